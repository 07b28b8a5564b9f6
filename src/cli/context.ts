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
