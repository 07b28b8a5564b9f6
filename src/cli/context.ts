import type { Command } from "commander";
import type { Config } from "../config/types.js";

/** What every command module gets: lazy access to the selected instance's config. */
export interface CliContext {
  /** `--config PATH`, else `$SI_CONFIG`, else `./etc/config`. */
  configPath(): string;
  /** Loads and validates the config once; throws ConfigError naming file, line and key. */
  config(): Promise<Config>;
  /** Where command output goes (tests replace it). */
  out: (line: string) => void;
}

/** A file in src/cli/commands/ exports `register`; main.ts discovers them all. */
export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

/**
 * Exit status when the reader of stdout or stderr went away (`si config show | head -3`):
 * 141 = 128 + SIGPIPE, what a shell reports for `cat` or `git` in the same place, so
 * `set -o pipefail` scripts still see that the output was cut short. Node ignores SIGPIPE,
 * so a write to a closed pipe is an EPIPE 'error' event instead, which unhandled ends in a
 * stack trace (issue 14 item 8).
 */
export const CLOSED_OUTPUT_EXIT = 141;

/**
 * Makes the process exit quietly with CLOSED_OUTPUT_EXIT as soon as a write to stdout or
 * stderr fails with EPIPE (its reader closed), whatever command was printing. Installed
 * once by bin/si.js before any command runs; nothing can be printed about it, since
 * the reader is gone (and stderr may be the closed one). Other write errors (ENOSPC on a
 * redirected file) are reported on whichever stream still works, without a stack trace.
 */
export function exitQuietlyWhenOutputCloses(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") {
        const other = stream === process.stderr ? process.stdout : process.stderr;
        try {
          other.write(`si: error: Cannot write output: ${err.message}\n`);
        } catch {
          // Both streams are unusable: the exit status is all that is left.
        }
      }
      process.exit(err.code === "EPIPE" ? CLOSED_OUTPUT_EXIT : 1);
    });
  }
}
