/**
 * Shared parts of the generator tests: a temp instance with a GeneratorContext, an image
 * environment, real HTTP servers on 127.0.0.1 with misbehaving routes, tarball builders, and
 * the real-gpg check every published file must pass.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { readTar, type TarHeader } from "../../src/archive/tar/index.js";
import { defaultCodec } from "../../src/io/xz.js";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import { GeneratorError } from "../../src/errors.js";
import { makeGeneratorContext, type Environment, type GeneratorContext } from "../../src/generators/index.js";
import { httpFetcher, type Fetcher } from "../../src/io/fetch.js";
import { sidecarPath } from "../../src/model/naming.js";
import { buildKeyrings } from "../../src/pgp/keyring-build.js";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import { GpgHome } from "../helpers/gpg.js";
import { makeInstance, type Instance } from "../helpers/instance.js";

export const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

export interface GenInstance {
  inst: Instance;
  config: Config;
  ctx: GeneratorContext;
  logs: string[];
  pool: string;
}

/** Short timeouts and no retries: failures are immediate and deterministic. */
export const TEST_FETCH = { retries: 0, connectTimeoutMs: 2_000, readTimeoutMs: 1_500 };

const made: string[] = [];

/** Removes every instance and temp dir made through this module (use in afterAll). */
export function cleanupAll(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  homes.clear();
}

export async function genInstance(opts: { fetcher?: Fetcher; keyrings?: boolean } = {}): Promise<GenInstance> {
  const inst = makeInstance({ extraConfig: "xz_level = 1\n" });
  made.push(inst.base);
  const config = await loadConfig(inst.config);
  const logs: string[] = [];
  const ctx = makeGeneratorContext(config, {
    fetcher: opts.fetcher ?? httpFetcher,
    fetchOptions: { ...TEST_FETCH },
    log: (l) => logs.push(l),
  });
  if (opts.keyrings) {
    await buildKeyrings({
      keyPath: config.gpg_key_path,
      keyringPath: config.gpg_keyring_path,
      signer: new LocalSigner(config.gpg_key_path),
      imageSigningDays: 730,
      deviceSigningDays: 31,
      xzLevel: 1,
    });
  }
  return { inst, config, ctx, logs, pool: join(config.publish_path, "pool") };
}

export function makeEnv(g: GenInstance, over: Partial<Environment> = {}): Environment {
  const channel = over.channel_name ?? "test";
  const device = over.device_name ?? "test";
  return {
    channel_name: channel,
    device_name: device,
    device: join(g.config.publish_path, channel, device),
    version: 1234,
    version_detail: [],
    new_files: [],
    ...over,
  };
}

/** Awaits a generator call that must fail; returns the error for further checks. */
export async function expectGenError(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<GeneratorError> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected a GeneratorError, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GeneratorError);
  const msg = (err as Error).message;
  for (const part of parts) {
    if (typeof part === "string") expect(msg).toContain(part);
    else expect(msg).toMatch(part);
  }
  return err as GeneratorError;
}

/** Everything in the pool (temporaries included), sorted. */
export function poolListing(g: GenInstance): string[] {
  return existsSync(g.pool) ? readdirSync(g.pool).sort() : [];
}

/** A real gpg, trusting only the instance's image-signing key, must accept `file.asc`. */
const homes = new Map<string, GpgHome>();
export function expectSigned(g: GenInstance, ...files: string[]): void {
  const key = join(g.config.gpg_key_path, "image-signing/public.asc");
  let home = homes.get(key);
  if (!home) {
    home = new GpgHome().importKey(key);
    made.push(home.dir);
    homes.set(key, home);
  }
  for (const f of files) {
    const r = home.verify(`${f}.asc`, f);
    expect(r.ok, `${f}.asc: ${r.output}`).toBe(true);
  }
}

/** A published file: it, its sidecar, and both signatures verify with gpg. */
export function expectPublished(g: GenInstance, path: string, opts: { sidecar?: boolean } = {}): void {
  expect(existsSync(path), path).toBe(true);
  expectSigned(g, path);
  if (opts.sidecar !== false) expectSigned(g, sidecarPath(path));
}

export const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;

// ---------------------------------------------------------------------------------------
// Tarballs

export function tmpDir(prefix = "si-gen-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Builds a directory tree from `files` (path → content; content null = directory). */
export function tree(files: Record<string, string | Buffer | null>, dir = tmpDir()): string {
  for (const [p, content] of Object.entries(files)) {
    const full = join(dir, p);
    if (content === null) mkdirSync(full, { recursive: true });
    else {
      mkdirSync(join(full, ".."), { recursive: true });
      writeFileSync(full, content);
    }
  }
  return dir;
}

/**
 * `tar` (GNU) of `dir`'s members, compressed with `how`; members listed without `./`. Every
 * member gets the same mtime: trees written a second apart must not differ by mtime alone
 * (the image diff counts an mtime change as a change).
 */
export function tarOf(dir: string, how: "xz" | "gzip" | "none", members = readdirSync(dir).sort()): Buffer {
  const list = members.length ? members : ["-T", "/dev/null"];
  const tar = execFileSync("tar", ["--format=gnu", "--mtime=@1767225600", "-C", dir, "-cf", "-", ...list], { maxBuffer: 1 << 28 });
  if (how === "xz") return execFileSync("xz", ["-1", "-c"], { input: tar });
  if (how === "gzip") return execFileSync("gzip", ["-n", "-c"], { input: tar });
  return tar;
}

/** A small xz system-image tarball with one file under system/. */
export function xzTarball(content = "hello\n"): Buffer {
  return tarOf(tree({ "system/etc/hello": content }), "xz");
}

export interface TarMember {
  name: string;
  type: string;
  mode: string;
  owner: string;
  link?: string;
}

/** `tar -tv` of an archive (xz or gzip detected by tar), parsed. */
export function listTar(path: string): TarMember[] {
  const out = execFileSync("tar", ["--numeric-owner", "-tvf", path], { encoding: "utf8", maxBuffer: 1 << 26 });
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const m = /^(\S)(\S{9})\s+(\S+)\s+\d+\s+\S+\s+\S+\s+(.*)$/.exec(line);
      if (!m) throw new Error(`cannot parse tar line: ${line}`);
      let name = m[4];
      let link: string | undefined;
      for (const sep of [" -> ", " link to "]) {
        const i = name.indexOf(sep);
        if (i >= 0) {
          link = name.slice(i + sep.length);
          name = name.slice(0, i);
        }
      }
      return { type: m[1], mode: m[2], owner: m[3], name: name.replace(/\/$/, ""), ...(link !== undefined ? { link } : {}) };
    });
}

/** The headers of an xz tarball, as our reader sees them. */
export async function tarHeaders(path: string): Promise<TarHeader[]> {
  const out: TarHeader[] = [];
  for await (const { header, body } of readTar(createReadStream(path).pipe(defaultCodec().decompress()))) {
    out.push(header);
    body.resume();
  }
  return out;
}

/** One member's content. */
export function tarMember(path: string, member: string): Buffer {
  return execFileSync("tar", ["-xOf", path, member], { maxBuffer: 1 << 28 });
}

// ---------------------------------------------------------------------------------------
// HTTP

export type Route = string | Buffer | ((req: IncomingMessage, res: ServerResponse) => void);

export interface TestServer {
  url: string;
  port: number;
  routes: Map<string, Route>;
  /** Request paths, in order. */
  hits: string[];
  hitsOf(path: string): number;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1; unknown paths are 404; `fallback` may serve the rest. */
export async function serve(
  routes: Record<string, Route> = {},
  fallback?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<TestServer> {
  const table = new Map<string, Route>(Object.entries(routes));
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    hits.push(path);
    const route = table.get(path);
    if (typeof route === "function") return route(req, res);
    if (route !== undefined) {
      const body = Buffer.isBuffer(route) ? route : Buffer.from(route);
      res.writeHead(200, { "content-length": body.length, "content-type": "application/octet-stream" });
      res.end(body);
      return;
    }
    if (fallback?.(req, res)) return;
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    routes: table,
    hits,
    hitsOf: (p) => hits.filter((h) => h === p).length,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Misbehaving routes. */
export const routes = {
  status:
    (code: number): Route =>
    (_req, res) => {
      res.writeHead(code, { "content-type": "text/plain" });
      res.end(`status ${code}\n`);
    },
  html: (): Route => (_req, res) => {
    const body = `<!DOCTYPE html>\n<html><head><title>Login</title></head><body>${"<p>please log in</p>".repeat(60)}</body></html>\n`;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-length": Buffer.byteLength(body) });
    res.end(body);
  },
  /** Announces more bytes than it sends, then closes the connection. */
  truncated:
    (data: Buffer): Route =>
    (_req, res) => {
      res.writeHead(200, { "content-length": data.length * 2 });
      res.write(data, () => res.socket?.destroy());
    },
  /** Sends headers and the first bytes, then nothing (until the server closes). */
  stalled:
    (data: Buffer): Route =>
    (_req, res) => {
      res.writeHead(200, { "content-length": data.length });
      res.write(data.subarray(0, Math.min(600, data.length - 1)));
    },
  /** Never answers at all. */
  silent: (): Route => () => {},
  redirectLoop:
    (to: string): Route =>
    (_req, res) => {
      res.writeHead(302, { location: to });
      res.end();
    },
};

/** A fetcher that sends `http://<host>/...` to the test server while the generators see `host`. */
export function mappedFetcher(host: string, server: { url: string }): Fetcher {
  const map = (u: string) => (u.startsWith(`http://${host}/`) ? server.url + u.slice(`http://${host}`.length) : u);
  return {
    text: (u, o) => httpFetcher.text(map(u), o),
    download: (u, d, o) => httpFetcher.download(map(u), d, o),
  };
}
