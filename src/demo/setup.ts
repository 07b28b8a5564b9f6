/**
 * The embedded demo instance (`npm start`): everything a fresh clone needs to serve a real,
 * signed update tree, made on first run and reused afterwards — keys, keyrings, a
 * self-signed certificate, channel `demo` with device `generic`, and builds 1 and 2 imported
 * through the real pipeline (http generator from a local "build farm", keyring, version,
 * delta 2←1). Base directory: the checkout itself, so the device's trust root is
 * `secret/gpg/keyrings/archive-master.tar.xz`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import { importImages } from "../importer/import-images.js";
import type { Logger } from "../io/log.js";
import { rebuildKeyrings } from "../keys/rebuild.js";
import { KEY_TITLES, generateKey, keyExists, storeKey } from "../pgp/keys.js";
import { KEY_NAMES, type KeyName } from "../pgp/signer.js";
import { ensureSelfSignedCertificate } from "../server/tls.js";
import { Tree } from "../tree/index.js";
import { writeSampleInputs } from "./sample.js";

export const DEMO_CHANNEL = "demo";
export const DEMO_DEVICE = "generic";

export interface DemoOptions {
  root: string;
  httpPort: number;
  httpsPort: number;
  log: Logger;
}

function demoConfigText(root: string, o: { httpPort: number; httpsPort: number; farm: string }): string {
  return `# Written by \`si demo\` (npm start) on first run. Delete www/, secret/, state/ and this
# file to start the demo from scratch.
[global]
base_path = ${root}
public_fqdn = 127.0.0.1
public_http_port = ${o.httpPort}
public_https_port = ${o.httpsPort}
channels = ${DEMO_CHANNEL}

[channel_${DEMO_CHANNEL}]
type = auto
fullcount = 5
files = ubports, device, keyring, version
file_ubports = http;${o.farm}/rootfs.tar.xz;name=ubports,monitor=${o.farm}/rootfs.version
file_device = http;${o.farm}/device.tar.xz;name=device,monitor=${o.farm}/device.version
file_keyring = keyring;archive-master
file_version = version
`;
}

/** The local build farm of the first run: serves the sample inputs and their monitors. */
async function startFarm(files: Record<string, () => Buffer>): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const body = files[req.url ?? ""];
    if (!body) return void res.writeHead(404).end();
    const data = body();
    res.writeHead(200, { "content-length": data.length }).end(data);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

async function ensureKeys(config: Config, log: Logger): Promise<void> {
  for (const name of KEY_NAMES) {
    if (await keyExists(config.gpg_key_path, name)) continue;
    const k = await generateKey({ name: `Demo ${KEY_TITLES[name]}`, email: "demo@localhost.localdomain", bits: 4096 });
    await storeKey(config.gpg_key_path, name, k.privateArmored, k.publicArmored);
    log.info(`generated key ${name} (rsa4096)`, { fingerprint: k.fingerprint });
  }
  const missing = KEY_NAMES.filter((k) => !existsSync(join(config.gpg_keyring_path, `${k}.tar.xz`))) as KeyName[];
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

/** Makes (or reuses) the demo instance and returns its config. */
export async function prepareDemo(o: DemoOptions): Promise<Config> {
  const configPath = join(o.root, "etc/demo.conf");
  const inputs = join(o.root, "state/demo-inputs");
  mkdirSync(inputs, { recursive: true });
  mkdirSync(join(o.root, "www"), { recursive: true });
  mkdirSync(join(o.root, "etc"), { recursive: true });
  let farm: { url: string; close(): Promise<void> } | undefined;
  let rootfsVersion = 1;
  const firstRun = !existsSync(configPath);
  try {
    let config: Config;
    if (firstRun) {
      o.log.info("first run: creating the demo instance");
      const sample = await writeSampleInputs(inputs);
      farm = await startFarm({
        "/rootfs.tar.xz": () => readFileSync(sample.rootfs[rootfsVersion - 1]),
        "/rootfs.version": () => Buffer.from(`demo-${rootfsVersion}\n`),
        "/device.tar.xz": () => readFileSync(sample.device),
        "/device.version": () => Buffer.from("demo-1\n"),
      });
      writeFileSync(configPath + ".tmp", demoConfigText(o.root, { ...o, farm: farm.url }));
      config = await loadConfig(configPath + ".tmp");
    } else {
      config = await loadConfig(configPath);
    }
    await ensureKeys(config, o.log);
    await ensureSelfSignedCertificate(config.tls_cert!, config.tls_key!, ["127.0.0.1", "localhost"]);
    const tree = new Tree(config);
    const channels = await tree.listChannels();
    if (!channels[DEMO_CHANNEL]) await tree.createChannel(DEMO_CHANNEL);
    if (!channels[DEMO_CHANNEL]?.devices?.[DEMO_DEVICE]) await tree.createDevice(DEMO_CHANNEL, DEMO_DEVICE);
    for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) {
      if (!existsSync(join(config.publish_path, "gpg", `${k}.tar.xz.asc`))) await tree.publishKeyring(k);
    }
    if (farm) {
      for (rootfsVersion = 1; rootfsVersion <= 2; rootfsVersion++) {
        const r = await importImages(config, { log: o.log, trigger: "demo" });
        if (r.failed) throw new Error(`demo import of build ${rootfsVersion} failed (see the log above)`);
      }
      // Only a complete first run leaves the config in place; a failed one starts over.
      writeFileSync(configPath, readFileSync(configPath + ".tmp"));
      config = await loadConfig(configPath);
    }
    const versions = await fullVersions(tree);
    if (versions.length === 0) o.log.warn(`the demo device has no image; delete ${configPath} to rebuild the demo`);
    return config;
  } finally {
    await farm?.close();
  }
}
