/**
 * `si config show [--json]`: prints the parsed instance config with every default filled in
 * and every path made absolute, so an operator can see what the server will actually use.
 * A config error surfaces as the usual one-line `si: error: <file>:<line>: ...`.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import type { Config } from "../../config/types.js";
import { mirrorCommands } from "../../config/mirrors.js";
import { configProblems, globalKeys, loadConfig } from "../../config/load.js";
import { ConfigError } from "../../errors.js";

/** JSON shape: channels become an array so their config order survives any name. */
export function configToJson(conf: Config): unknown {
  return {
    ...conf,
    mirrors: Object.values(conf.mirrors),
    channels: [...conf.channels.values()],
  };
}

/** [global] scalars in the order config.example documents them; unset ones print "(unset)". */
const SCALARS: (keyof Config)[] = [
  "path",
  "base_path",
  "gpg_key_path",
  "gpg_keyring_path",
  "publish_path",
  "state_path",
  "public_fqdn",
  "public_http_port",
  "public_https_port",
  "tls_cert",
  "tls_key",
  "import_schedule",
  "admin_address",
  "admin_port",
  "image_signing_expiry_days",
  "device_signing_expiry_days",
  "keyring_auto_renew_days",
  "xz_level",
  "http_timeout",
  "http_retries",
  "http_connect_timeout",
  "mirror_connect_timeout",
  "mirror_timeout",
  "versioned_index",
  "image_max_bytes",
  "image_max_members",
  "image_max_ratio",
  "image_allow_devices",
  "delta_mtime",
  "delta_xz_block_mib",
  "delta_xz_dict_mib",
];

/** A setting as `config show` prints it: lists joined by commas, as they are written in etc/config. */
function settingText(value: unknown): string {
  if (value === undefined) return "(unset)";
  if (Array.isArray(value)) return value.map((v) => settingText(v)).join(",");
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

export function configToText(conf: Config): string[] {
  const lines: string[] = [];
  // Any key the loader reads or sets that this list misses is still shown (after the others,
  // "(unset)" when absent), so `config show` never hides a setting and needs no list updates.
  const keys = new Set<string>([...SCALARS, ...globalKeys(), ...Object.keys(conf)]);
  const others = [...keys].filter((k) => !(SCALARS as string[]).includes(k) && k !== "mirrors" && k !== "channels") as (keyof Config)[];
  for (const key of [...SCALARS, ...others]) lines.push(`${key}: ${settingText(conf[key])}`);
  const mirrors = mirrorCommands(conf);
  lines.push(`mirrors: ${mirrors.length === 0 ? "(none)" : ""}`.trimEnd());
  for (const argv of mirrors) lines.push(`  ${argv.join(" ")}`);
  lines.push(`channels: ${conf.channels.size === 0 ? "(none)" : ""}`.trimEnd());
  for (const ch of conf.channels.values()) {
    lines.push(
      `  ${ch.name}: type=${ch.type} versionbase=${ch.versionbase} fullcount=${ch.fullcount}` +
        ` deltabase=${ch.deltabase.join(",")} delta_mtime=${ch.delta_mtime}`,
    );
    for (const f of ch.files) lines.push(`    ${f.name}: ${[f.generator, ...f.arguments].join(";")}`);
  }
  return lines;
}

export function register(program: Command, ctx: CliContext): void {
  const config = program.command("config").description("inspect the instance configuration (etc/config)");
  config
    .command("show")
    .description("print the parsed config: paths, mirrors, channels and their files")
    .option("--json", "print JSON instead of text")
    .action(async (opts: { json?: boolean }) => {
      const conf = await ctx.config();
      if (opts.json) ctx.out(JSON.stringify(configToJson(conf), null, 2));
      else for (const line of configToText(conf)) ctx.out(line);
    });
  config
    .command("check")
    .description("validate the config (unknown sections and keys too) without touching anything: for CI of config repos")
    .action(async () => {
      const problems = await checkConfig(ctx.configPath());
      if (typeof problems === "string") return ctx.out(problems);
      // One `si: error: file:line: ...` line per problem, like the single error of any command.
      for (const p of problems) process.stderr.write(`si: error: ${p}\n`);
      process.exitCode = 1;
    });
}

/**
 * `si config check`: reads the file and nothing else (no directory, key, lock or state is
 * created or opened), then checks what `si serve` would check first (import_schedule).
 * Returns the one-line OK, or every problem found.
 */
export async function checkConfig(path: string): Promise<string | string[]> {
  let conf: Config;
  try {
    conf = await loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) return configProblems(err).map((e) => e.message);
    throw err;
  }
  if (conf.import_schedule !== undefined) {
    const { validateSchedule } = await import("../../scheduler/scheduler.js");
    try {
      validateSchedule(conf, conf.import_schedule);
    } catch (err) {
      if (err instanceof ConfigError) return [err.message];
      throw err;
    }
  }
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  return `${conf.path}: OK (${count(conf.channels.size, "channel")}, ${count(Object.keys(conf.mirrors).length, "mirror")})`;
}
