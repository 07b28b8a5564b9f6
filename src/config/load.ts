/**
 * `etc/config` → typed Config (server-reference §4). Value post-processing, defaults and the
 * error catalogue (§4.6) follow the reference; every error is a ConfigError whose message
 * starts with `<file>:<line>:` and names the section and key, and several problems the
 * reference lets through (or crashes on later) are refused here with a clear message.
 * Strict (issue 15): a section or key this file does not read is an error too (strict.ts),
 * and all the problems of a file are reported together (ConfigErrors).
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ConfigError, errorMessage } from "../errors.js";
import { parseRolloutSteps, ROLLOUT_DEFAULTS } from "../model/rollout-steps.js";
import { parseIni } from "./ini.js";
import { ConfigErrors, ConfigReader } from "./reader.js";
import { strictProblems, type SectionKind } from "./strict.js";
import type { ChannelConfig, Config, DeltaMtimePolicy, FileEntry, MirrorConfig } from "./types.js";

/** Generator names a `file_*` entry may use (server-reference §5.1). */
export const GENERATOR_NAMES: readonly string[] = [
  "version",
  "cdimage-ubuntu",
  "cdimage-custom",
  "cdimage-device-raw",
  "http",
  "http-cdimage",
  "keyring",
  "system-image",
  "remote-system-image",
];

/** Default xz block size for deltas (issue 19's measured curve, README "xz settings"). */
export const DEFAULT_DELTA_XZ_BLOCK_MIB = 16;
/**
 * Largest xz dictionary of a delta's blocks, MiB. Measured on the Debian pair's 80.8 MB delta
 * (README "xz settings of deltas"): 16 → 4 MiB costs +0.5 % bytes and saves 270 MB of the
 * compressor's memory (two threads) and 17 % of its CPU time; below 4 MiB bytes rise fast.
 */
export const DEFAULT_DELTA_XZ_DICT_MIB = 4;
/** Default delta policy: leave mtime-only changes out, as the reference does (issue 19). */
export const DEFAULT_DELTA_MTIME: DeltaMtimePolicy = "content";

const MIRROR_KEYS = ["ssh_user", "ssh_key", "ssh_port", "ssh_command"] as const;

export { ConfigErrors, configProblems, pyValue } from "./reader.js";

/** §4.1 default location: `$SYSTEM_IMAGE_ROOT/etc/config`, else `<cwd>/etc/config`. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return join(env.SYSTEM_IMAGE_ROOT ?? cwd, "etc", "config");
}

/** Reads and validates a config file (default: §4.1 location). */
export async function loadConfig(path?: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const file = path ?? defaultConfigPath(env);
  let text: string;
  try {
    const bytes = await readFile(file);
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ConfigError(`Configuration file doesn't exist: ${file}`, "Exception");
    const reason = err instanceof TypeError ? "not valid UTF-8" : (code ?? String(err));
    throw new ConfigError(`Cannot read configuration file ${file}: ${reason}`, "Exception", { cause: err });
  }
  return parseConfigText(text, file, env);
}

/**
 * Parses config text; `file` names the source in messages and becomes `Config.path`.
 * Reading goes on after a bad value so that every problem is reported at once (one
 * ConfigError, or ConfigErrors when there are several), unknown sections and keys included.
 */
export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const doc = parseIni(text, file);
  const reader = new Reader(file, doc.sections);
  const conf = reader.soft(undefined, () => reader.config(env));
  const listed = (key: string) => reader.list("global", key)?.names ?? [];
  const schema = { keys: knownKeys(reader.seen), prefixes: { channel: FILE_PREFIX } };
  for (const p of strictProblems(doc, schema, { mirrors: listed("mirrors"), channels: listed("channels") })) {
    reader.problems.push({ line: p.line, error: new ConfigError(`${file}:${p.line}: ${p.message}`, "KeyError") });
  }
  // A key read twice (delta_mtime: for [global] and as the channels' fallback) fails once.
  const messages = new Set<string>();
  const errors = reader.problems
    .sort((a, b) => a.line - b.line)
    .map((p) => p.error)
    .filter((e) => !messages.has(e.message) && messages.add(e.message));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new ConfigErrors(errors);
  return conf!;
}

const FILE_PREFIX = "file_";
/** A config with one section of every kind, read once to learn which keys the loader reads. */
const PROBE = `[global]\nmirrors = p\nchannels = p\n[mirror_default]\nssh_user = u\nssh_key = k\nssh_port = 22\nssh_command = c\n[mirror_p]\nssh_host = h\n[channel_p]\n`;
let probed: Map<SectionKind, Set<string>> | undefined;

/**
 * The keys the loader looks up in each kind of section: those it looked up while reading the
 * probe config (every kind present), plus those it looked up in this file. So a key added
 * to the Reader below is known to the strict check with no list to keep in step.
 */
function knownKeys(seen: Map<SectionKind, Set<string>>): Map<SectionKind, Set<string>> {
  const keys = new Map<SectionKind, Set<string>>();
  for (const [kind, set] of [...probeKeys(), ...seen]) keys.set(kind, new Set([...(keys.get(kind) ?? []), ...set]));
  return keys;
}

function probeKeys(): Map<SectionKind, Set<string>> {
  if (!probed) {
    const probe = new Reader("(probe)", parseIni(PROBE, "(probe)").sections);
    probe.soft(undefined, () => probe.config({}));
    probed = probe.seen;
  }
  return probed;
}

/** Every `[global]` key the loader reads, in reading order (`si config show` prints them all). */
export function globalKeys(): string[] {
  return [...(probeKeys().get("global") ?? [])];
}

/** The loader proper: what each section means (the lookups are ConfigReader's). */
class Reader extends ConfigReader {
  config(env: NodeJS.ProcessEnv): Config {
    const G = "global";
    // §4.3, deliberately different: base_path is made absolute (against the working
    // directory, which is what a relative path meant to the reference) and relative paths
    // below are prefixed with it exactly once (the reference prefixes defaults twice).
    const base = resolve(this.str(G, "base_path") ?? env.SYSTEM_IMAGE_ROOT ?? process.cwd());
    const path = (key: string, ...fallback: string[]) => {
      const v = this.str(G, key);
      return v === undefined ? join(base, ...fallback) : resolve(base, v);
    };
    const port = (key: string) => {
      const o = this.opt(G, key);
      return o ? String(this.int(G, key, 0, 0, 65535)) : undefined;
    };
    const schedule = this.str(G, "import_schedule");
    const conf: Config = {
      path: resolve(this.file),
      base_path: base,
      gpg_key_path: path("gpg_key_path", "secret", "gpg", "keys"),
      gpg_keyring_path: path("gpg_keyring_path", "secret", "gpg", "keyrings"),
      publish_path: path("publish_path", "www"),
      state_path: path("state_path", "state"),
      public_fqdn: this.str(G, "public_fqdn"),
      public_http_port: port("public_http_port"),
      public_https_port: port("public_https_port"),
      tls_cert: path("tls_cert", "secret", "tls", "cert.pem"),
      tls_key: path("tls_key", "secret", "tls", "key.pem"),
      import_schedule: schedule === "" ? undefined : schedule,
      admin_port: this.int(G, "admin_port", 8090, 0, 65535),
      admin_address: this.str(G, "admin_address") || "127.0.0.1",
      admin_allowed_hosts: this.list(G, "admin_allowed_hosts")
        ?.names.flatMap((n) => n.toLowerCase().split(/[\s,]+/))
        .filter(Boolean),
      admin_token_file: this.str(G, "admin_token_file") ? path("admin_token_file") : undefined,
      keyring_warn_days: this.opt(G, "keyring_warn_days") ? this.int(G, "keyring_warn_days", 30, 0, 100 * 365) : undefined,
      serve_max_connections: this.opt(G, "serve_max_connections") ? this.int(G, "serve_max_connections", 4096, 1, 1_000_000) : undefined,
      serve_send_timeout: this.opt(G, "serve_send_timeout") ? this.int(G, "serve_send_timeout", 60, 1, 86_400) : undefined,
      image_signing_expiry_days: this.int(G, "image_signing_expiry_days", 730, 1, 100 * 365),
      device_signing_expiry_days: this.int(G, "device_signing_expiry_days", 31, 1, 100 * 365),
      keyring_auto_renew_days: this.opt(G, "keyring_auto_renew_days") ? this.int(G, "keyring_auto_renew_days", 0, 1, 100 * 365) : undefined,
      xz_level: this.int(G, "xz_level", 9, 0, 9),
      http_timeout: this.opt(G, "http_timeout") ? this.int(G, "http_timeout", 0, 1, 3600) : undefined,
      http_retries: this.int(G, "http_retries", 2, 0, 10),
      http_connect_timeout: this.opt(G, "http_connect_timeout") ? this.int(G, "http_connect_timeout", 10, 1, 3600) : undefined,
      mirror_connect_timeout: this.opt(G, "mirror_connect_timeout") ? this.int(G, "mirror_connect_timeout", 10, 1, 3600) : undefined,
      mirror_timeout: this.opt(G, "mirror_timeout") ? this.int(G, "mirror_timeout", 300, 1, 86400) : undefined,
      versioned_index: this.bool(G, "versioned_index", true),
      image_max_bytes: this.int(G, "image_max_bytes", 16 * 1024 ** 3, 1, Number.MAX_SAFE_INTEGER),
      image_max_members: this.int(G, "image_max_members", 2_000_000, 1, Number.MAX_SAFE_INTEGER),
      image_max_ratio: this.int(G, "image_max_ratio", 50, 1, 1_000_000),
      image_allow_devices: this.bool(G, "image_allow_devices", false),
      delta_mtime: this.mtimePolicy(G, DEFAULT_DELTA_MTIME),
      delta_xz_block_mib: this.int(G, "delta_xz_block_mib", DEFAULT_DELTA_XZ_BLOCK_MIB, 1, 1024),
      delta_xz_dict_mib: this.int(G, "delta_xz_dict_mib", DEFAULT_DELTA_XZ_DICT_MIB, 1, 64),
      mirror_verify: this.bool(G, "mirror_verify", false),
      mirrors: this.mirrors(base),
      channels: this.channels(this.mtimePolicy(G, DEFAULT_DELTA_MTIME)),
    };
    // Keep the object free of `key: undefined`, so JSON and toEqual see only the set keys.
    return Object.fromEntries(Object.entries(conf).filter(([, v]) => v !== undefined)) as unknown as Config;
  }

  /** `delta_mtime = content | exact` in `section`, else `fallback`. */
  mtimePolicy(section: string, fallback: DeltaMtimePolicy): DeltaMtimePolicy {
    const o = this.opt(section, "delta_mtime");
    if (!o) return fallback;
    return this.soft(fallback, () => {
      const v = this.one(section, "delta_mtime");
      if (v !== "content" && v !== "exact")
        this.fail(o.line, `must be 'content' or 'exact', got '${v}'`, "ValueError", section, "delta_mtime");
      return v;
    });
  }

  /**
   * §4.4, and the push mirrors of issue 16. `type` absent is `trigger`, so reference configs
   * read as before; [mirror_default] is required (with its four keys) only when a trigger
   * mirror is listed. Every key of every type is looked up whatever the type, so the strict
   * check knows them all; a key that does not apply to the mirror's type is an error.
   */
  mirrors(base: string): Record<string, MirrorConfig> {
    const listed = this.list("global", "mirrors");
    const mirrors: Record<string, MirrorConfig> = Object.create(null) as Record<string, MirrorConfig>;
    // `mirrors =` is [""], which counts as non-empty (verified reference behaviour).
    if (!listed || listed.names.length === 0) return mirrors;
    const typeOf = (name: string) => this.one(`mirror_${name}`, "type") ?? "trigger";
    const def = this.sections.get("mirror_default");
    if (listed.names.some((n) => typeOf(n) === "trigger")) {
      if (!def) this.fail(listed.line, "Missing mirror_default section.", "KeyError", "global", "mirrors");
      for (const key of MIRROR_KEYS) {
        if (!this.opt("mirror_default", key)) this.fail(def.line, `Missing key in mirror_default: ${key}`, "KeyError");
      }
    }
    // One bad mirror does not hide the problems of the next (every problem is reported).
    for (const name of listed.names)
      this.soft(undefined, () => {
        const sname = `mirror_${name}`;
        const section = this.sections.get(sname);
        if (!section) this.fail(listed.line, `Missing mirror section: ${sname}`, "KeyError", "global", "mirrors");
        mirrors[name] = this.mirror(name, sname, section.line, base);
      });
    return mirrors;
  }

  mirror(name: string, sname: string, headerLine: number, base: string): MirrorConfig {
    // opt() rather than options.has(): the lookup makes the override a known key.
    const pick = (key: string) => (this.opt(sname, key) ? sname : "mirror_default");
    const type = this.one(sname, "type") ?? "trigger";
    const raw = {
      ssh_host: this.one(sname, "ssh_host"),
      ssh_user: this.one(pick("ssh_user"), "ssh_user"),
      ssh_key: this.one(pick("ssh_key"), "ssh_key"),
      ssh_port: this.opt(pick("ssh_port"), "ssh_port") ? this.int(pick("ssh_port"), "ssh_port", 22, 0, 65535) : undefined,
      ssh_command: this.one(pick("ssh_command"), "ssh_command"),
      ssh_known_hosts: this.one(sname, "ssh_known_hosts"),
      target: this.one(sname, "target"),
      remote: this.one(sname, "remote"),
      rclone_config: this.one(sname, "rclone_config"),
    };
    const url = this.one(sname, "url");
    const purge = this.one(sname, "purge_command");
    const common = {
      name,
      ...(url ? { url: this.mirrorUrl(sname, url) } : {}),
      ...(purge ? { purge_command: purge.split(/\s+/).filter(Boolean) } : {}),
    };
    // Keys of another type are a mistake (a `target` on a trigger mirror would be ignored).
    const own: Record<string, string[]> = {
      trigger: ["ssh_host"],
      rsync: ["target", "ssh_known_hosts"],
      rclone: ["remote", "rclone_config"],
    };
    if (!(type in own))
      this.fail(this.opt(sname, "type")!.line, `must be 'trigger', 'rsync' or 'rclone', got '${type}'`, "ValueError", sname, "type");
    for (const [t, keys] of Object.entries(own))
      for (const k of keys)
        if (t !== type && this.sections.get(sname)?.options.has(k))
          this.fail(this.opt(sname, k)!.line, `only a 'type = ${t}' mirror reads it (this one is '${type}')`, "ValueError", sname, k);
    if (type === "trigger") {
      if (raw.ssh_host === undefined) this.fail(headerLine, `Missing key in ${sname}: ssh_host`, "KeyError");
      return {
        ...common,
        type,
        ssh_host: raw.ssh_host,
        ssh_user: raw.ssh_user!,
        ssh_key: resolve(base, raw.ssh_key!),
        ssh_port: raw.ssh_port ?? 22,
        ssh_command: raw.ssh_command!,
      };
    }
    if (type === "rsync") {
      if (!raw.target) this.fail(headerLine, `Missing key in ${sname}: target (user@host:/path)`, "KeyError");
      // An option-looking target would be read by rsync as an option.
      if (raw.target.startsWith("-")) this.fail(this.opt(sname, "target")!.line, "must not start with '-'", "ValueError", sname, "target");
      return {
        ...common,
        type,
        target: raw.target,
        ...(raw.ssh_key ? { ssh_key: resolve(base, raw.ssh_key) } : {}),
        ...(raw.ssh_port !== undefined ? { ssh_port: raw.ssh_port } : {}),
        ...(raw.ssh_known_hosts ? { ssh_known_hosts: resolve(base, raw.ssh_known_hosts) } : {}),
      };
    }
    if (!raw.remote) this.fail(headerLine, `Missing key in ${sname}: remote (name:bucket/path, or a directory)`, "KeyError");
    if (raw.remote.startsWith("-")) this.fail(this.opt(sname, "remote")!.line, "must not start with '-'", "ValueError", sname, "remote");
    return {
      ...common,
      type: "rclone",
      remote: raw.remote,
      ...(raw.rclone_config ? { rclone_config: resolve(base, raw.rclone_config) } : {}),
    };
  }

  /** A mirror's public `url`: http(s), no query, normalised to end with "/". */
  mirrorUrl(sname: string, url: string): string {
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || u.search || u.hash)
      this.fail(this.opt(sname, "url")!.line, `must be an http(s) URL with no query, got '${url}'`, "ValueError", sname, "url");
    // It is passed to purge_command as an argument (seen in process lists) and logged.
    if (u.username || u.password)
      this.fail(
        this.opt(sname, "url")!.line,
        "must not carry a user or password (it is logged and passed to purge_command)",
        "ValueError",
        sname,
        "url",
      );
    return u.href.endsWith("/") ? u.href : `${u.href}/`;
  }

  /** §4.5. */
  channels(globalMtime: DeltaMtimePolicy): Map<string, ChannelConfig> {
    const channels = new Map<string, ChannelConfig>();
    const listed = this.list("global", "channels");
    // One bad channel does not hide the problems of the next (every problem is reported).
    for (const name of listed?.names ?? [])
      this.soft(undefined, () => {
        const sname = `channel_${name}`;
        if (!this.sections.has(sname)) {
          this.fail(listed!.line, `Missing channel section: ${sname}`, "KeyError", "global", "channels");
        }
        const type = this.one(sname, "type") ?? "manual";
        if (type !== "auto" && type !== "manual") {
          this.fail(this.opt(sname, "type")!.line, `must be 'auto' or 'manual', got '${type}'`, "ValueError", sname, "type");
        }
        const files = this.list(sname, "files");
        channels.set(name, {
          name,
          type,
          versionbase: this.int(sname, "versionbase", 1, 1, Number.MAX_SAFE_INTEGER),
          fullcount: this.int(sname, "fullcount", 0, 0, Number.MAX_SAFE_INTEGER),
          deltabase: this.list(sname, "deltabase")?.names ?? [name],
          files: (files?.names ?? []).flatMap((entry) => this.soft([], () => [this.fileEntry(sname, entry, files!.line)])),
          delta_mtime: this.mtimePolicy(sname, globalMtime),
          ...this.rollout(sname),
        });
      });
    return channels;
  }

  /** A channel's staged-rollout keys (issue 17). */
  rollout(sname: string): Pick<ChannelConfig, "rollout" | "rollout_floor" | "rollout_grace_hours" | "rollout_min_downloads"> {
    const o = this.opt(sname, "rollout");
    // The raw value: its ", " would make it a list for one().
    const text = o?.value.trim();
    const keys = {
      rollout_floor: this.int(sname, "rollout_floor", ROLLOUT_DEFAULTS.rollout_floor, 0, 100),
      rollout_grace_hours: this.int(sname, "rollout_grace", ROLLOUT_DEFAULTS.rollout_grace_hours, 0, 24 * 365),
      rollout_min_downloads: this.int(sname, "rollout_min_downloads", ROLLOUT_DEFAULTS.rollout_min_downloads, 1, 1_000_000),
    };
    if (!o || !text) return keys;
    const steps = this.soft(undefined, () => {
      try {
        return parseRolloutSteps(text);
      } catch (err) {
        return this.fail(o.line, errorMessage(err), "ValueError", sname, "rollout");
      }
    });
    return steps ? { ...keys, rollout: steps } : keys;
  }

  /** `file_<entry> = generator;arg0;arg1...`, split on every `;` (§4.5, §5.2). */
  fileEntry(sname: string, entry: string, filesLine: number): FileEntry {
    const key = `${FILE_PREFIX}${entry}`;
    const o = this.opt(sname, key);
    if (!o) this.fail(filesLine, `Missing file entry: ${key}`, "KeyError", sname, "files");
    const value = this.one(sname, key)!;
    const [generator, ...args] = value.split(";");
    if (!GENERATOR_NAMES.includes(generator)) {
      this.fail(o.line, `Invalid generator: '${generator}' (valid: ${GENERATOR_NAMES.join(", ")})`, "ValueError", sname, key);
    }
    return { name: entry, generator: generator, arguments: args };
  }
}
