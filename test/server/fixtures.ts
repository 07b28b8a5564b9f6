/**
 * Shared parts of the server tests: a small published tree, a throwaway TLS certificate,
 * an HTTP(S) client that trusts it, a raw-socket client that sends request lines untouched,
 * and a logger that collects entries.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import type { LogEntry, ServerLogger } from "../../src/server/log.js";
import { startServer, type RunningServer } from "../../src/server/start.js";
import type { StaticTreeOptions } from "../../src/server/static-files.js";
import { ensureSelfSignedCertificate } from "../../src/server/tls.js";

export interface Site {
  base: string;
  publish: string;
  config: Config;
  /** Contents of the files written, by URL path. */
  files: Record<string, Buffer>;
}

export const CHANNELS = {
  "16.04/devel": { devices: { mako: { index: "/16.04/devel/mako/index.json" } } },
  stable: { devices: { mako: { index: "/stable/mako/index.json" }, hammerhead: { index: "/stable/hammerhead/index.json" } } },
};

/** A temp instance: config (with TLS paths) and a tree with JSON, .asc and xz files. */
export async function makeSite(extraConfig = ""): Promise<Site> {
  const base = mkdtempSync(join(tmpdir(), "si-serve-"));
  const publish = join(base, "www");
  const files: Record<string, Buffer> = {
    "/channels.json": Buffer.from(JSON.stringify(CHANNELS, null, 4) + "\n"),
    "/channels.json.asc": Buffer.from("-----BEGIN PGP SIGNATURE-----\n\nfake\n-----END PGP SIGNATURE-----\n"),
    "/16.04/devel/mako/index.json": Buffer.from('{"global": {}, "images": []}\n'),
    "/16.04/devel/mako/index.json.asc": Buffer.from("sig of index\n"),
    "/gpg/image-signing.tar.xz": randomBytes(3000),
    "/gpg/image-signing.tar.xz.asc": Buffer.from("sig of keyring\n"),
    // Above the in-memory limit (256 KiB), so it streams from an fd.
    "/pool/ubports-0123abcd.tar.xz": randomBytes(1024 * 1024 + 17),
    "/pool/ubports-0123abcd.tar.xz.asc": Buffer.from("sig of pool file\n"),
    "/pool/small.bin": randomBytes(100),
    "/pool/empty.bin": Buffer.alloc(0),
  };
  for (const [path, data] of Object.entries(files)) {
    mkdirSync(dirname(join(publish, path)), { recursive: true });
    writeFileSync(join(publish, path), data);
  }
  const cert = join(base, "secret/tls/cert.pem");
  const key = join(base, "secret/tls/key.pem");
  await ensureSelfSignedCertificate(cert, key, ["localhost", "127.0.0.1"]);
  // admin_port = 0: no admin listener, so parallel test files never fight over 8090.
  const text = `[global]\nbase_path = ${base}\npublic_http_port = 0\npublic_https_port = 0\nadmin_port = 0\n${extraConfig}`;
  const configPath = join(base, "etc/config");
  mkdirSync(dirname(configPath), { recursive: true });
  writeFileSync(configPath, text);
  return { base, publish, config: parseConfigText(text, configPath), files };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Target {
  port: number;
  /** CA to trust (the self-signed cert) → HTTPS. */
  ca?: Buffer;
}

/** One request over a fresh connection (no agent reuse), without any path normalisation. */
export function fetchRaw(target: Target, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const request = target.ca ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", servername: "localhost", port: target.port, method, path, headers, agent: false, ca: target.ca },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/**
 * Sends `head` (request line and headers, "\r\n"-separated, blank line included) as bytes on
 * a plain socket and returns the status code and raw response. Nothing on the way rewrites
 * the path, so `/%2e%2e/` and `..` reach the server as written.
 */
export function rawExchange(port: number, head: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", (err: NodeJS.ErrnoException) => {
      // The server may reset after answering an oversized request: keep what came.
      if (chunks.length > 0) finish();
      else reject(err);
    });
    sock.on("end", () => finish());
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
      sock.destroy();
    };
    sock.write(head);
  });
}

/** A GET line with Connection: close, for rawExchange. */
export const rawGet = (target: string, method = "GET") => `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;

export interface Collector extends ServerLogger {
  entries: LogEntry[];
}

export function collectingLogger(): Collector {
  const entries: LogEntry[] = [];
  return { entries, log: (e) => entries.push(JSON.parse(JSON.stringify(e)) as LogEntry) };
}

/** Waits until `pred` holds (log lines arrive when the response's socket side closes). */
export async function eventually<T>(read: () => T | undefined, what: string, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = read();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Repeats `attempt` until it returns a value, for up to `ms`. Small files are served from
 * memory and a change reaches them within a bound (inotify event or re-check: src/server/
 * static-files.ts), so a test of an update asks until the bound has passed, never once.
 */
export async function within<T>(ms: number, what: string, attempt: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await attempt();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not seen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface ServedSite {
  /** The site of this test file (made in beforeAll). */
  readonly site: Site;
  /** Serves the site over HTTP on a free port until the end of the current test. */
  serve: (staticOptions?: StaticTreeOptions) => Promise<Target>;
}

/** One site per test file (makeSite), served by at most one `si serve` listener at a time. */
export function useServedSite(): ServedSite {
  let site: Site | undefined;
  let server: RunningServer | undefined;
  beforeAll(async () => {
    site = await makeSite();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  afterAll(() => {
    if (site) rmSync(site.base, { recursive: true, force: true });
  });
  return {
    get site() {
      if (!site) throw new Error("the site is made in beforeAll");
      return site;
    },
    async serve(staticOptions) {
      server = await startServer(site!.config, {
        address: "127.0.0.1",
        httpPort: 0,
        httpsPort: null,
        accessLog: false,
        logger: { log() {} },
        staticOptions,
      });
      return { port: server.httpPort! };
    },
  };
}
