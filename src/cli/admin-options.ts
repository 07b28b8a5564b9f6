/**
 * What the admin command files in src/cli/commands/ share: the common options (`-v`,
 * `--lock-timeout`, `--json`), the logger (progress on stderr, so stdout holds only what
 * changed, or the JSON result), and printing a result.
 */
import type { Command } from "commander";
import type { CliContext } from "./context.js";
import { createLogger, levelFromVerbosity, type Logger } from "../io/log.js";
import { countOption, parseLockTimeout } from "../admin/args.js";
import type { AdminContext } from "../admin/context.js";
import { DEFAULT_LOCK_WAIT_MS } from "../admin/lock.js";

export interface CommonOptions {
  verbose?: number;
  lockTimeout?: number;
  json?: boolean;
}

/** Adds `-v` (default 0: warnings and errors only), `--json`, and `--lock-timeout` when the command locks. */
export function commonOptions(cmd: Command, opts: { lock?: boolean; json?: boolean } = {}): Command {
  cmd.option("-v, --verbose", "more progress output on stderr (repeatable: -v info, -vv debug)", countOption, 0);
  if (opts.lock !== false) {
    cmd.option(
      "--lock-timeout <seconds>",
      `wait this long for the global lock (held by imports) before giving up (default: ${DEFAULT_LOCK_WAIT_MS / 1000})`,
      parseLockTimeout,
    );
  }
  if (opts.json !== false) cmd.option("--json", "print the result as JSON");
  return cmd;
}

/** Progress lines on stderr in the short human form (`I: ...`). */
export function adminLogger(verbose = 0): Logger {
  return createLogger({ level: levelFromVerbosity(verbose, 1), json: false, write: (line) => process.stderr.write(line + "\n") });
}

export async function adminContext(ctx: CliContext, o: CommonOptions): Promise<AdminContext> {
  return { config: await ctx.config(), log: adminLogger(o.verbose), lockWaitMs: o.lockTimeout ?? DEFAULT_LOCK_WAIT_MS };
}

/** Prints the result: its lines, or with `--json` the data as one JSON document. */
export function emit(ctx: CliContext, o: CommonOptions, lines: string[], data: unknown): void {
  if (o.json) ctx.out(JSON.stringify(data, null, 2));
  else for (const l of lines) ctx.out(l);
}

/** Runs one admin operation returning `{lines, data}` and prints it. */
export async function runAdmin(
  ctx: CliContext,
  o: CommonOptions,
  fn: (a: AdminContext) => Promise<{ lines: string[]; data: unknown }>,
): Promise<void> {
  const res = await fn(await adminContext(ctx, o));
  emit(ctx, o, res.lines, res.data);
}
