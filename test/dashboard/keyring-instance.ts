/**
 * A small instance for the admin listener's access and keyring tests: keyrings built from
 * the cached test keys, a channel `devel` with device `mako`, the four keyrings published.
 * `imageSigningDays` rebuilds the image-signing keyring with that validity (negative =
 * already expired) before it is published, as an operator who let it lapse would have it.
 * Plus a plain HTTP client that can send any Host header.
 */
import { request } from "node:http";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import { buildKeyrings } from "../../src/pgp/keyring-build.js";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import type { LogEntry, ServerLogger } from "../../src/server/log.js";
import { Tree } from "../../src/tree/index.js";
import { makeInstance, type Instance } from "../helpers/instance.js";

export async function keyringInstance(
  opts: { imageSigningDays?: number; extraConfig?: string[] } = {},
): Promise<{ inst: Instance; config: Config }> {
  const inst = makeInstance({ extraConfig: (opts.extraConfig ?? []).map((l) => l + "\n").join("") });
  const r = inst.si("generate-keyrings");
  expect(r.status, r.stderr).toBe(0);
  if (opts.imageSigningDays !== undefined) {
    await buildKeyrings({
      keyPath: inst.keys,
      keyringPath: inst.keyrings,
      signer: new LocalSigner(inst.keys),
      imageSigningDays: opts.imageSigningDays,
      deviceSigningDays: 31,
      only: ["image-signing"],
      force: true,
    });
  }
  const config = await loadConfig(inst.config);
  const tree = new Tree(config);
  await tree.createChannel("devel");
  await tree.createDevice("devel", "mako");
  for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) await tree.publishKeyring(k);
  return { inst, config };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request to 127.0.0.1:port with exactly these headers (Host included when given). */
export function ask(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

export function collectingLogger(): ServerLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return { entries, log: (e) => entries.push(e) };
}
