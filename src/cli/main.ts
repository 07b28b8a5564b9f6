/**
 * The one error boundary of the CLI: every command module is discovered in ./commands/,
 * registered on one commander program, and any error it throws is mapped to an exit
 * status and a single line on stderr here (never a stack trace, unless SI_DEBUG is set).
 */
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Command, CommanderError } from "commander";
import { SiError, errorMessage } from "../errors.js";
import type { CliContext, CommandModule } from "./context.js";
import type { Config } from "../config/types.js";

const commandsDir = fileURLToPath(new URL("./commands/", import.meta.url));

async function loadCommandModules(): Promise<CommandModule[]> {
  const files = readdirSync(commandsDir)
    .filter((f) => f.endsWith(".js"))
    .sort();
  const modules: CommandModule[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(resolve(commandsDir, f)).href)) as Partial<CommandModule>;
    if (typeof mod.register === "function") modules.push(mod as CommandModule);
  }
  return modules;
}

export function buildContext(program: Command): CliContext {
  let cached: Promise<Config> | undefined;
  // --config, else $SI_CONFIG, else the reference's $SYSTEM_IMAGE_ROOT/etc/config, else ./etc/config.
  const configPath = () =>
    resolve(
      (program.opts().config as string | undefined) ??
        process.env.SI_CONFIG ??
        (process.env.SYSTEM_IMAGE_ROOT ? resolve(process.env.SYSTEM_IMAGE_ROOT, "etc/config") : "etc/config"),
    );
  return {
    configPath,
    config() {
      cached ??= import("../config/load.js").then((m) => m.loadConfig(configPath()));
      return cached;
    },
    out: (line) => process.stdout.write(line + "\n"),
  };
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command("si")
    .description("system-image OTA server: publish signed OS images to a fleet of devices")
    .option("-c, --config <path>", "instance config file (default: $SI_CONFIG or ./etc/config)")
    .showHelpAfterError()
    .exitOverride();
  const ctx = buildContext(program);
  for (const mod of await loadCommandModules()) mod.register(program, ctx);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with status 0; usage errors with 1 -> use 2 like argparse.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof SiError) {
      if (err.exitCode === 0) {
        process.stdout.write(err.message + "\n");
        return 0;
      }
      process.stderr.write(`si: error: ${err.message}\n`);
      if (process.env.SI_DEBUG) process.stderr.write(`${err.stack}\n`);
      return err.exitCode;
    }
    process.stderr.write(`si: error: ${errorMessage(err)}\n`);
    if (process.env.SI_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
