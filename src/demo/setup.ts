/**
 * The embedded demo instance (`npm start`): everything a fresh clone needs to serve a real,
 * signed update tree, made on first run and reused afterwards — keys, keyrings, a
 * self-signed certificate, channel `demo` with device `generic`, and builds 1 and 2 imported
 * through the real pipeline (cdimage generators reading the demo's own build farm, keyring,
 * version, delta 2←1). Base directory: the checkout itself, so the device's trust root is
 * `secret/gpg/keyrings/archive-master.tar.xz`.
 *
 * The farm is a directory (farm.ts), so `si --config etc/demo.conf import-images` works at any
 * later time, offline, and `si demo --next-build` publishes build 3, 4, ...
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import { ConfigError, GeneratorError } from "../errors.js";
import { importImages } from "../importer/import-images.js";
import type { Logger } from "../io/log.js";
import { rebuildKeyrings } from "../keys/rebuild.js";
import { KEY_TITLES, generateKey, keyExists, storeKey } from "../pgp/keys.js";
import { KEY_NAMES } from "../pgp/signer.js";
import { ensureSelfSignedCertificate } from "../server/tls.js";
import { Tree } from "../tree/index.js";
import { addDeviceBuild, addRootfsBuild, demoFarm, farmFileLines, latestBuild } from "./farm.js";

export const DEMO_CHANNEL = "demo";
export const DEMO_DEVICE = "generic";

export interface DemoOptions {
  root: string;
  httpPort: number;
  httpsPort: number;
  log: Logger;
}

function demoConfigText(root: string, o: { httpPort: number; httpsPort: number }): string {
  return `# Written by \`si demo\` (npm start) on first run. Delete www/, secret/, state/ and this
# file to start the demo from scratch. The channel reads the demo's build farm under
# state/demo-farm/ (no network): \`si demo --next-build\` adds a build there and imports it.
[global]
base_path = ${root}
public_fqdn = 127.0.0.1
public_http_port = ${o.httpPort}
public_https_port = ${o.httpsPort}
channels = ${DEMO_CHANNEL}

[channel_${DEMO_CHANNEL}]
type = auto
fullcount = 5
${farmFileLines(demoFarm(root))}
`;
}

async function ensureKeys(config: Config, log: Logger): Promise<void> {
  for (const name of KEY_NAMES) {
    if (await keyExists(config.gpg_key_path, name)) continue;
    const k = await generateKey({ name: `Demo ${KEY_TITLES[name]}`, email: "demo@localhost.localdomain", bits: 4096 });
    await storeKey(config.gpg_key_path, name, k.privateArmored, k.publicArmored);
    log.info(`generated key ${name} (rsa4096)`, { fingerprint: k.fingerprint });
  }
  const missing = KEY_NAMES.filter((k) => !existsSync(join(config.gpg_keyring_path, `${k}.tar.xz`)));
  if (missing.length) {
    await rebuildKeyrings(config, { only: missing });
    log.info(`built keyrings: ${missing.join(", ")}`);
  }
}

async function fullVersions(tree: Tree): Promise<number[]> {
  const channels = await tree.listChannels();
  if (!channels[DEMO_CHANNEL]?.devices?.[DEMO_DEVICE]) return [];
  const images = await (await tree.getDevice(DEMO_CHANNEL, DEMO_DEVICE)).listImages();
  return images.filter((i) => i.type === "full").map((i) => i.version);
}

async function runImport(config: Config, log: Logger, build: number): Promise<void> {
  const r = await importImages(config, { log, trigger: "demo" });
  if (r.failed) throw new GeneratorError(`Cannot import demo build ${build}: ${r.failed} device(s) failed (see the log above)`);
}

/** The demo config of an older `si demo`, whose channel read a build farm that ran only during its first run. */
function farmIsGone(config: Config): boolean {
  return config.channels.get(DEMO_CHANNEL)?.files.some((f) => f.generator === "http") ?? false;
}

/** Makes (or reuses) the demo instance and returns its config. */
export async function prepareDemo(o: DemoOptions): Promise<Config> {
  const configPath = join(o.root, "etc/demo.conf");
  if (existsSync(configPath)) {
    const config = await loadConfig(configPath);
    if (farmIsGone(config)) {
      o.log.warn(
        `${configPath} was written by an older \`si demo\`: its channel reads a build farm that is gone, so imports fail; delete www/, state/ and ${configPath} (secret/ keeps the keys) and run \`si demo\` again`,
      );
    }
    if ((await fullVersions(new Tree(config))).length === 0)
      o.log.warn(`the demo device has no image; delete ${configPath} to rebuild the demo`);
    return config;
  }
  o.log.info("first run: creating the demo instance");
  mkdirSync(join(o.root, "www"), { recursive: true });
  mkdirSync(join(o.root, "etc"), { recursive: true });
  // The config is only put in place by a complete first run; a failed one starts over.
  const tmp = `${configPath}.tmp`;
  try {
    writeFileSync(tmp, demoConfigText(o.root, o));
    const config = await loadConfig(tmp);
    await ensureKeys(config, o.log);
    await ensureSelfSignedCertificate(config.tls_cert!, config.tls_key!, ["127.0.0.1", "localhost"]);
    const tree = new Tree(config);
    const channels = await tree.listChannels();
    if (!channels[DEMO_CHANNEL]) await tree.createChannel(DEMO_CHANNEL);
    if (!channels[DEMO_CHANNEL]?.devices?.[DEMO_DEVICE]) await tree.createDevice(DEMO_CHANNEL, DEMO_DEVICE);
    for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) {
      if (!existsSync(join(config.publish_path, "gpg", `${k}.tar.xz.asc`))) await tree.publishKeyring(k);
    }
    const farm = demoFarm(o.root);
    rmSync(join(o.root, "state/demo-farm"), { recursive: true, force: true });
    // The device tarball's recovery trusts this instance's archive master (made just above).
    const am = join(config.gpg_keyring_path, "archive-master.tar.xz");
    await addDeviceBuild(farm, 1, { name: "archive-master", tarball: readFileSync(am), signature: readFileSync(`${am}.asc`) });
    for (const build of [1, 2]) {
      await addRootfsBuild(farm, build);
      await runImport(config, o.log, build);
    }
    renameSync(tmp, configPath);
  } finally {
    rmSync(tmp, { force: true });
  }
  return loadConfig(configPath);
}

/**
 * `si demo --next-build`: adds the next rootfs build to the demo's farm and imports it, which
 * publishes a new full image and a delta from the previous one. Returns the new build number.
 */
export async function publishNextBuild(config: Config, log: Logger): Promise<number> {
  if (farmIsGone(config)) {
    throw new ConfigError(
      `Cannot publish the next demo build: ${config.path} was written by an older \`si demo\` whose build farm ran only during its first run; delete www/, state/ and ${config.path} (secret/ keeps the keys) and run \`si demo\` again`,
    );
  }
  const farm = demoFarm(config.base_path);
  const build = latestBuild(farm.rootfs) + 1;
  await addRootfsBuild(farm, build);
  log.info(`added rootfs build ${build} to ${farm.rootfs}`);
  await runImport(config, log, build);
  return build;
}

/** The newest full image of the demo device (0 when it has none). */
export async function newestDemoVersion(config: Config): Promise<number> {
  return Math.max(0, ...(await fullVersions(new Tree(config))));
}
