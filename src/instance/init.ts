/**
 * `si init DIR`: a new instance that `si channel create` and `si serve` can use at once —
 * etc/config from the shipped template, www/, state/, secret/ (0700) with the five signing
 * keys and their keyrings, the four keyrings devices download published in www/gpg/, and a
 * self-signed certificate for the public name unless a real one will be installed.
 *
 * It reuses what `si generate-keys`, `si generate-keyrings`, `si keyring publish` and
 * `si demo` run (pgp/keys, keys/rebuild, Tree.publishKeyring, server/tls). With `force` it
 * completes an existing instance: the config is rewritten (the old one kept as
 * etc/config.bak) but keys, keyrings, certificate and tree are kept; only what is missing
 * is made.
 */
import { existsSync, statSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import { SiError } from "../errors.js";
import { rebuildKeyrings } from "../keys/rebuild.js";
import { KEY_TITLES, generateKey, keyExists, storeKey } from "../pgp/keys.js";
import { KEY_NAMES, type KeyName } from "../pgp/signer.js";
import { ensureSelfSignedCertificate } from "../server/tls.js";
import { Tree } from "../tree/index.js";
import { renderInstanceConfig } from "./config-text.js";
import { CONFIG_FILE, configTemplatePath, existingInstanceParts } from "./layout.js";

/** The keyrings a device downloads from gpg/ (device-signing is attached per device). */
export const DEVICE_KEYRINGS: readonly KeyName[] = ["archive-master", "image-master", "image-signing", "blacklist"];

export interface InitOptions {
  dir: string;
  fqdn: string;
  httpPort: number;
  httpsPort: number;
  adminPort: number;
  /** false (--no-tls): no self-signed certificate; a real one will be installed. */
  tls: boolean;
  force: boolean;
  /** User IDs of the keys: `<prefix> <Key Title> <email>`. */
  email: string;
  prefix: string;
  /** Progress lines (`I: ...`, `W: ...`). */
  say: (line: string) => void;
  now?: Date;
}

export interface InitResult {
  config: Config;
  generatedKeys: KeyName[];
  builtKeyrings: KeyName[];
  published: KeyName[];
  certificate: boolean;
}

async function writeConfig(o: InitOptions, dir: string): Promise<string> {
  const path = join(dir, CONFIG_FILE);
  const text = renderInstanceConfig(
    await readFile(configTemplatePath(), "utf8"),
    { base_path: dir, public_fqdn: o.fqdn, public_http_port: o.httpPort, public_https_port: o.httpsPort, admin_port: o.adminPort },
    { selfSigned: o.tls, date: o.now ?? new Date() },
  );
  await mkdir(join(dir, "etc"), { recursive: true });
  if (existsSync(path)) {
    await copyFile(path, `${path}.bak`);
    o.say(`I: kept the previous config as ${path}.bak`);
  }
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
  o.say(`I: wrote ${path}`);
  return path;
}

/** The five keys, made in parallel (RSA 4096 takes seconds each); existing ones are kept. */
async function ensureKeys(o: InitOptions, config: Config): Promise<KeyName[]> {
  const missing: KeyName[] = [];
  for (const name of KEY_NAMES) if (!(await keyExists(config.gpg_key_path, name))) missing.push(name);
  if (missing.length < KEY_NAMES.length) o.say(`I: kept existing keys: ${KEY_NAMES.filter((k) => !missing.includes(k)).join(", ")}`);
  if (missing.length) o.say(`I: generating ${missing.length} RSA 4096 signing keys...`);
  const made = await Promise.all(
    missing.map((name) => generateKey({ name: `${o.prefix} ${KEY_TITLES[name]}`, email: o.email, bits: 4096 })),
  );
  for (const [i, name] of missing.entries()) {
    const k = made[i];
    await storeKey(config.gpg_key_path, name, k.privateArmored, k.publicArmored);
    o.say(`I: key ${name}: ${k.fingerprint.toUpperCase()} (rsa4096)`);
  }
  return missing;
}

/** Keyrings: all of them again when a key is new (the chain changed), else the missing ones. */
async function ensureKeyrings(o: InitOptions, config: Config, newKeys: KeyName[]): Promise<KeyName[]> {
  const rebuildAll = newKeys.length > 0;
  const only = rebuildAll ? [...KEY_NAMES] : KEY_NAMES.filter((k) => !existsSync(join(config.gpg_keyring_path, `${k}.tar.xz`)));
  if (only.length === 0) return [];
  const { built, skipped } = await rebuildKeyrings(config, { only, force: rebuildAll });
  for (const k of built) {
    const exp = k.expiry ? `expires ${new Date(k.expiry * 1000).toISOString().slice(0, 10)}` : "no expiry";
    o.say(`I: keyring ${k.path} (signed by ${k.signer}, ${exp})`);
  }
  for (const s of skipped) o.say(`W: skipped keyring ${s}`);
  return built.map((k) => k.name);
}

/** Publishes into www/gpg/ every device keyring that is new or not there yet. */
async function publishKeyrings(o: InitOptions, config: Config, rebuilt: KeyName[]): Promise<KeyName[]> {
  const tree = new Tree(config);
  const published: KeyName[] = [];
  for (const k of DEVICE_KEYRINGS) {
    if (!rebuilt.includes(k) && existsSync(join(config.publish_path, "gpg", `${k}.tar.xz.asc`))) continue;
    await tree.publishKeyring(k);
    published.push(k);
  }
  if (published.length) o.say(`I: published keyrings in ${join(config.publish_path, "gpg")}: ${published.join(", ")}`);
  return published;
}

export async function initInstance(o: InitOptions): Promise<InitResult> {
  const dir = resolve(o.dir);
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new SiError(`Cannot initialise instance ${dir}: it exists and is not a directory`);
  }
  const found = existingInstanceParts(dir);
  if (found.length && !o.force) {
    throw new SiError(
      `Cannot initialise instance ${dir}: it already has ${found.join(", ")} (--force completes it: the config is rewritten, keys, keyrings and tree are kept)`,
    );
  }
  await mkdir(dir, { recursive: true });
  const config = await loadConfig(await writeConfig(o, dir));
  for (const d of [config.publish_path, config.state_path]) await mkdir(d, { recursive: true });
  // secret/ holds the private keys: owner only, whatever the umask (mkdir's mode is masked).
  const secret = join(dir, "secret");
  await mkdir(secret, { recursive: true, mode: 0o700 });
  await chmod(secret, 0o700);
  const generatedKeys = await ensureKeys(o, config);
  const builtKeyrings = await ensureKeyrings(o, config, generatedKeys);
  const published = await publishKeyrings(o, config, builtKeyrings);
  let certificate = false;
  if (o.tls) {
    certificate = await ensureSelfSignedCertificate(config.tls_cert!, config.tls_key!, [o.fqdn]);
    o.say(
      certificate ? `I: self-signed certificate for ${o.fqdn}: ${config.tls_cert}` : `I: kept the existing certificate ${config.tls_cert}`,
    );
  } else if (!existsSync(config.tls_cert!)) {
    o.say(`W: no certificate (--no-tls): install one as ${config.tls_cert} and ${config.tls_key} before serving HTTPS`);
  }
  return { config, generatedKeys, builtKeyrings, published, certificate };
}
