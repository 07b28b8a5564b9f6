/**
 * The standard import instance of the tests and the crash campaign, set up as an operator
 * would (README "Operator walkthrough"): etc/config with channel `devel` (type auto) whose
 * `ubports` and `device` entries download from a build farm with monitor files, the cached
 * test keys, `si generate-keyrings`, device `mako` in every channel, and the keyrings devices
 * download published in gpg/. It lives in bench/ because bench/crash.ts uses it and bench/ is
 * compiled with the project (tsconfig `include`), which test/ is not.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/config/load.js";
import type { Config } from "../src/config/types.js";
import type { KeyName } from "../src/pgp/signer.js";
import { Tree } from "../src/tree/index.js";

/** The repository root, from bench/ or compiled (dist/bench/) alike. */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) d = dirname(d);
  return d;
}

export type StandardFile = "ubports" | "device" | "keyring" | "version";

export interface StandardInstanceOptions {
  /** Directory of the instance (created); default a new one under the system temp dir. */
  base?: string;
  /** More [global] lines, after base_path, public_fqdn and the public ports. */
  global?: string[];
  /** `fullcount` of devel (default 10; null = no key, i.e. keep every image). */
  fullcount?: number | null;
  /** devel's `files`, in order (default ubports, device, keyring, version). */
  files?: StandardFile[];
  /** URL path of the device tarball's monitor file (default /device.version). */
  deviceMonitor?: string;
  /** More channels after devel, each `type = manual`, `fullcount = 0`, with device mako. */
  manualChannels?: string[];
  /** Keyrings published in gpg/ (default the four every device downloads). */
  publish?: KeyName[];
  /** Directory of the signing keys to copy (default test-artifacts/keys). */
  keys?: string;
}

export interface StandardInstance {
  base: string;
  configPath: string;
  config: Config;
  keys: string;
  keyrings: string;
  publish: string;
  state: string;
}

export const DEVICE_KEYRINGS: KeyName[] = ["archive-master", "image-master", "image-signing", "blacklist"];

/** The config text: `farmUrl` serves /rootfs.tar.xz, /rootfs.version and /device.tar.xz. */
export function standardConfig(base: string, farmUrl: string, opts: StandardInstanceOptions = {}): string {
  const files = opts.files ?? ["ubports", "device", "keyring", "version"];
  const entry: Record<StandardFile, string> = {
    ubports: `http;${farmUrl}/rootfs.tar.xz;name=ubports,monitor=${farmUrl}/rootfs.version`,
    device: `http;${farmUrl}/device.tar.xz;name=device,monitor=${farmUrl}${opts.deviceMonitor ?? "/device.version"}`,
    keyring: "keyring;archive-master",
    version: "version",
  };
  const manual = opts.manualChannels ?? [];
  const fullcount = opts.fullcount === undefined ? 10 : opts.fullcount;
  return [
    "[global]",
    `base_path = ${base}`,
    "public_fqdn = system-image.example.net",
    "public_http_port = 880",
    "public_https_port = 8443",
    ...(opts.global ?? []),
    `channels = ${["devel", ...manual].join(", ")}`,
    "[channel_devel]",
    "type = auto",
    ...(fullcount === null ? [] : [`fullcount = ${fullcount}`]),
    `files = ${files.join(", ")}`,
    ...files.map((f) => `file_${f} = ${entry[f]}`),
    ...manual.flatMap((name) => [`[channel_${name}]`, "type = manual", "fullcount = 0"]),
    "",
  ].join("\n");
}

function generateKeyrings(configPath: string): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [join(repoRoot(), "bin/si.js"), "--config", configPath, "generate-keyrings"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", fail);
    child.on("close", (code) => (code === 0 ? ok() : fail(new Error(`si generate-keyrings failed (${code}):\n${out}`))));
  });
}

/** Creates the instance; throws with the command's output if a step fails. */
export async function standardInstance(farmUrl: string, opts: StandardInstanceOptions = {}): Promise<StandardInstance> {
  const base = opts.base ?? mkdtempSync(join(tmpdir(), "si-inst-"));
  for (const d of ["etc", "www", "state"]) mkdirSync(join(base, d), { recursive: true });
  const configPath = join(base, "etc/config");
  writeFileSync(configPath, standardConfig(base, farmUrl, opts));
  const keys = join(base, "secret/gpg/keys");
  cpSync(opts.keys ?? join(repoRoot(), "test-artifacts/keys"), keys, { recursive: true });
  await generateKeyrings(configPath);
  const config = await loadConfig(configPath);
  const tree = new Tree(config);
  for (const channel of ["devel", ...(opts.manualChannels ?? [])]) {
    await tree.createChannel(channel);
    await tree.createDevice(channel, "mako");
  }
  for (const k of opts.publish ?? DEVICE_KEYRINGS) await tree.publishKeyring(k);
  return { base, configPath, config, keys, keyrings: config.gpg_keyring_path, publish: config.publish_path, state: config.state_path };
}
