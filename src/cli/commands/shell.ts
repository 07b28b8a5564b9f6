/**
 * `si shell`: the admin shell over the published tree (server-reference §9.7). Interactive on
 * a terminal; with `-e CODE` or code piped on stdin it runs the code as a script, waits for
 * every operation it started, and exits 1 if any failed (one line each on stderr).
 *
 * `pub` is the Tree, `conf` the Config, `admin` the admin commands (copy_image, tag_image, ...).
 *
 * Locking: the shell holds the global lock only while it has tree operations queued or
 * running (see src/shell/locking-queue.ts), waiting up to --lock-timeout for an import to end.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { countOption, parseLockTimeout } from "../../admin/args.js";
import { adminLogger } from "../admin-options.js";
import { DEFAULT_LOCK_WAIT_MS } from "../../admin/lock.js";
// The REPL is imported when the shell runs, not when the CLI starts: node:repl loads the
// `domain` module, which slows every server socket of a process that loaded it (-30-40 %
// requests/s measured with `si serve --workers 1`).

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString("utf8");
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("shell")
    .description("admin shell: pub (the tree) and conf (the config) in a JavaScript REPL; -e CODE or piped code runs as a script")
    .option("-e, --eval <code>", "run CODE (top-level await allowed), wait for its operations, exit")
    .option("-v, --verbose", "more progress output of the admin commands on stderr (repeatable)", countOption, 0)
    .option(
      "--lock-timeout <seconds>",
      `wait this long for the global lock before an operation fails (default: ${DEFAULT_LOCK_WAIT_MS / 1000})`,
      parseLockTimeout,
    )
    .action(async (o: { eval?: string; lockTimeout?: number; verbose: number }) => {
      const conf = await ctx.config();
      const { ShellSession } = await import("../../shell/session.js");
      const session = new ShellSession(conf, {
        lockWaitMs: o.lockTimeout ?? DEFAULT_LOCK_WAIT_MS,
        log: adminLogger(o.verbose),
        onLockWait: (m) => process.stderr.write(`W: ${m}\n`),
      });
      try {
        const code = o.eval ?? (process.stdin.isTTY ? undefined : await readAll(process.stdin));
        if (code === undefined) {
          const { runRepl } = await import("../../shell/repl.js");
          await runRepl(session);
          return;
        }
        const { runScript } = await import("../../shell/script.js");
        const status = await runScript(session, code, {
          out: (text) => process.stdout.write(text),
          err: (line) => process.stderr.write(line + "\n"),
        });
        if (status !== 0) process.exitCode = status;
      } finally {
        session.close();
      }
    });
}
