/**
 * For `npm run bench`: a throwaway server instance (config, keys, keyrings, channel `devel`
 * with device `mako`) whose `ubports` entry downloads a rootfs from a local "build farm"
 * on 127.0.0.1 with a monitor file, like the import end-to-end test.
 */
import { execFileSync } from "node:child_process";
import { cpSync, createReadStream, existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/config/load.js";
import { Tree } from "../src/tree/index.js";

export const REPO = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
export const SI = join(REPO, "bin/si.js");

/** Serves `routes` (URL path -> file, or text) on 127.0.0.1, streaming files from disk. */
export async function buildFarm(routes: Map<string, { file?: string; body?: string }>): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const r = routes.get(req.url ?? "");
    if (!r) return void res.writeHead(404).end("not found");
    if (r.file) {
      res.writeHead(200, { "content-length": statSync(r.file).size, "content-type": "application/octet-stream" });
      createReadStream(r.file, { highWaterMark: 1 << 20 }).pipe(res);
    } else res.writeHead(200, { "content-type": "text/plain" }).end(r.body ?? "");
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((ok) => (server.closeAllConnections(), server.close(() => ok()))),
  };
}

export interface BenchInstance {
  base: string;
  config: string;
  publish: string;
  si(...args: string[]): string;
}

export interface BenchInstanceOptions {
  /** More [global] lines (e.g. `delta_xz_block_mib = 4`). */
  global?: string[];
  /**
   * Signing keys to copy (a `secret/gpg/keys` tree); default test-artifacts/keys. When it
   * does not exist the keys are generated and, with this option, saved there for next time.
   */
  keys?: string;
}

/** Creates the instance under `parent` (created); `farmUrl` serves /rootfs.tar.xz and /rootfs.version. */
export async function makeBenchInstance(
  parent: string,
  farmUrl: string,
  xzLevel: number,
  opts: BenchInstanceOptions = {},
): Promise<BenchInstance> {
  mkdirSync(parent, { recursive: true });
  const base = mkdtempSync(join(parent, "instance-"));
  for (const d of ["etc", "www", "state"]) mkdirSync(join(base, d));
  const config = join(base, "etc/config");
  writeFileSync(
    config,
    [
      "[global]",
      `base_path = ${base}`,
      "public_fqdn = system-image.example.net",
      "public_http_port = 880",
      "public_https_port = 8443",
      `xz_level = ${xzLevel}`,
      ...(opts.global ?? []),
      "channels = devel",
      "[channel_devel]",
      "type = auto",
      "fullcount = 10",
      "files = ubports, keyring, version",
      `file_ubports = http;${farmUrl}/rootfs.tar.xz;name=ubports,monitor=${farmUrl}/rootfs.version`,
      "file_keyring = keyring;archive-master",
      "file_version = version",
      "",
    ].join("\n"),
  );
  const si = (...args: string[]) =>
    execFileSync(process.execPath, [SI, "--config", config, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const keys = opts.keys ?? join(REPO, "test-artifacts/keys");
  if (existsSync(keys)) cpSync(keys, join(base, "secret/gpg/keys"), { recursive: true });
  else {
    si("generate-keys", "--bits", "2048");
    if (opts.keys) cpSync(join(base, "secret/gpg/keys"), opts.keys, { recursive: true });
  }
  si("generate-keyrings");
  const tree = new Tree(await loadConfig(config));
  await tree.createChannel("devel");
  await tree.createDevice("devel", "mako");
  for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) await tree.publishKeyring(k);
  return { base, config, publish: join(base, "www"), si };
}
