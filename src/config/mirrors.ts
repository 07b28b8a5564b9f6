/**
 * Mirror triggers (server-reference §4.4): after a change to the published tree, each mirror
 * is asked over ssh to pull. Like the reference, a mirror that cannot be reached never fails
 * a publish: the tree is already published; its outcome is logged.
 *
 * Differences from the reference, all on purpose (issue 15 item 4): callers run the triggers
 * after the global lock is released (a hung mirror must not hold imports and admin commands
 * back); all mirrors at once instead of one after another; `BatchMode=yes` (never a password
 * or host-key prompt), `ConnectTimeout` and a total time limit per mirror; ssh's own output
 * is kept off the terminal, and each mirror gets one log line with its outcome and duration.
 */
import { spawn } from "node:child_process";
import { compareCodePoints } from "../format/pyjson.js";
import type { Logger } from "../io/log.js";
import type { Config, TriggerMirrorConfig } from "./types.js";

export const DEFAULT_MIRROR_CONNECT_TIMEOUT = 10;
export const DEFAULT_MIRROR_TIMEOUT = 300;
/** After SIGTERM, how long ssh gets before SIGKILL. */
const KILL_GRACE_MS = 2_000;

type MirrorConf = Pick<Config, "mirrors" | "mirror_connect_timeout" | "mirror_timeout">;

/** The trigger mirrors (`type = trigger`, the default) sorted by ssh_host (stable), as the reference visits them. */
function sortedMirrors(config: Pick<Config, "mirrors">): TriggerMirrorConfig[] {
  return Object.values(config.mirrors)
    .filter((m): m is TriggerMirrorConfig => m.type === "trigger")
    .sort((a, b) => compareCodePoints(a.ssh_host, b.ssh_host));
}

function sshArgv(m: TriggerMirrorConfig, connectTimeout: number): string[] {
  return [
    "ssh",
    "-o",
    "BatchMode=yes",
    "-o",
    `ConnectTimeout=${connectTimeout}`,
    "-i",
    m.ssh_key,
    "-l",
    m.ssh_user,
    "-p",
    String(m.ssh_port),
    m.ssh_host,
    m.ssh_command,
  ];
}

/**
 * `ssh -o BatchMode=yes -o ConnectTimeout=N -i KEY -l USER -p PORT HOST COMMAND` per mirror,
 * sorted by ssh_host (stable).
 */
export function mirrorCommands(config: Pick<Config, "mirrors"> & Partial<MirrorConf>): string[][] {
  const connect = config.mirror_connect_timeout ?? DEFAULT_MIRROR_CONNECT_TIMEOUT;
  return sortedMirrors(config).map((m) => sshArgv(m, connect));
}

/** Why a trigger did not succeed, in one line (no ssh banner, no stack). */
export class MirrorFailure extends Error {
  constructor(
    message: string,
    readonly outcome: "failed" | "timeout" = "failed",
  ) {
    super(message);
  }
}

/** The runner's contract: resolve when the mirror was triggered, throw (one line) when not. */
export type MirrorRunner = (argv: string[], opts: { timeoutMs: number }) => Promise<void>;

/** The last non-empty line of what a process wrote, trimmed to something a log line holds. */
function lastLine(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines[lines.length - 1] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * Runs argv with no terminal: stdin from /dev/null, stdout and stderr captured (the last
 * stderr line explains a failure). Stops it with SIGTERM, then SIGKILL, after timeoutMs.
 */
export const runSsh: MirrorRunner = (argv, { timeoutMs }) =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stdout.resume(); // the mirror's own chatter: not ours to print
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr = (stderr + d).slice(-4096);
    });
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killer);
      if (err) reject(err);
      else resolvePromise();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      killer = setTimeout(() => {
        child.kill("SIGKILL");
        // A grandchild (ProxyCommand) holding the pipes must not keep us waiting for 'close'.
        settle(new MirrorFailure(`stopped after ${fmtSeconds(timeoutMs)} s (mirror_timeout)`, "timeout"));
      }, KILL_GRACE_MS);
    }, timeoutMs);
    child.once("error", (err) => settle(new MirrorFailure(`cannot run ${argv[0]}: ${err.message}`)));
    child.once("close", (code, signal) => {
      if (timedOut) return settle(new MirrorFailure(`stopped after ${fmtSeconds(timeoutMs)} s (mirror_timeout)`, "timeout"));
      if (code === 0) return settle();
      const why = lastLine(stderr);
      settle(new MirrorFailure(`${argv[0]} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}${why ? `: ${why}` : ""}`));
    });
  });

export interface MirrorResult {
  name: string;
  host: string;
  outcome: "ok" | "failed" | "timeout";
  /** Wall-clock time of the trigger, milliseconds. */
  durationMs: number;
  /** Why it failed, one line. */
  error?: string;
}

export interface SyncOptions {
  log?: Logger;
  /** Replaces ssh (tests). */
  run?: MirrorRunner;
}

function fmtSeconds(ms: number): string {
  return (ms / 1000).toFixed(1).replace(/\.0$/, "");
}

/**
 * Triggers every mirror at once and waits for all of them; never throws. Logs one line per
 * mirror as it finishes (info when triggered, warn otherwise) and returns the outcomes in
 * ssh_host order. Call it with the global lock released.
 */
export async function syncMirrors(config: MirrorConf, opts: SyncOptions = {}): Promise<MirrorResult[]> {
  const run = opts.run ?? runSsh;
  const timeoutMs = (config.mirror_timeout ?? DEFAULT_MIRROR_TIMEOUT) * 1000;
  const connect = config.mirror_connect_timeout ?? DEFAULT_MIRROR_CONNECT_TIMEOUT;
  return Promise.all(
    sortedMirrors(config).map(async (m): Promise<MirrorResult> => {
      const started = performance.now();
      let result: MirrorResult;
      try {
        await run(sshArgv(m, connect), { timeoutMs });
        result = { name: m.name, host: m.ssh_host, outcome: "ok", durationMs: Math.round(performance.now() - started) };
      } catch (err) {
        const outcome = err instanceof MirrorFailure ? err.outcome : "failed";
        const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").trim();
        result = { name: m.name, host: m.ssh_host, outcome, durationMs: Math.round(performance.now() - started), error: message };
      }
      const fields = { mirror: m.name, host: m.ssh_host, outcome: result.outcome, duration_ms: result.durationMs };
      const took = `${fmtSeconds(result.durationMs)} s`;
      if (result.outcome === "ok") opts.log?.info(`mirror ${m.name} (${m.ssh_host}) triggered in ${took}`, fields);
      else opts.log?.warn(`mirror ${m.name} (${m.ssh_host}) not triggered after ${took}: ${result.error}`, fields);
      return result;
    }),
  );
}
