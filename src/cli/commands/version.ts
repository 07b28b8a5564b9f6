/**
 * `si --version` / `si -V`: prints si's version (package.json) and exits 0 (issue 15 item 6).
 * A program-level option, registered from here because main.ts discovers command modules;
 * commander prints it and main.ts maps its exit to status 0.
 */
import type { Command } from "commander";
import { siVersion } from "../../version.js";
import type { CliContext } from "../context.js";

export function register(program: Command, _ctx: CliContext): void {
  program.version(siVersion(), "-V, --version", "print si's version and exit");
}
