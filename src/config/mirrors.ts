/**
 * Mirror triggers (server-reference §4.4): after every change to the published tree, each
 * mirror is asked over ssh to pull. The reference visits mirrors sorted by `ssh_host` and
 * ignores ssh's exit status, so one unreachable mirror never fails a publish.
 */
import { spawn } from "node:child_process";
import { SiError } from "../errors.js";
import { compareCodePoints } from "../format/pyjson.js";
import type { Config } from "./types.js";

/** `ssh -i KEY -l USER -p PORT HOST COMMAND` per mirror, sorted by ssh_host (stable). */
export function mirrorCommands(config: Pick<Config, "mirrors">): string[][] {
  return Object.values(config.mirrors)
    .sort((a, b) => compareCodePoints(a.ssh_host, b.ssh_host))
    .map((m) => ["ssh", "-i", m.ssh_key, "-l", m.ssh_user, "-p", String(m.ssh_port), m.ssh_host, m.ssh_command]);
}

/** Runs argv with inherited stdout/stderr; resolves on exit whatever the status. */
export function runIgnoringStatus(argv: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "inherit", "inherit"] });
    child.once("error", reject);
    child.once("close", () => resolvePromise());
  });
}

/**
 * Triggers every mirror in turn. Exit codes are ignored like the reference; a runner that
 * cannot start at all (no `ssh` binary) is reported once all mirrors were tried.
 */
export async function syncMirrors(
  config: Pick<Config, "mirrors">,
  run: (argv: string[]) => Promise<void> = runIgnoringStatus,
): Promise<void> {
  const failures: string[] = [];
  for (const argv of mirrorCommands(config)) {
    try {
      await run(argv);
    } catch (err) {
      failures.push(`${argv[argv.length - 2]}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (failures.length > 0) throw new SiError(`Cannot trigger mirror sync: ${failures.join("; ")}`);
}
