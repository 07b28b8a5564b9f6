/**
 * HTTP for generators (server-reference §5.3-§5.4): undici with connect, header and body
 * timeouts, bounded retries with backoff, redirects (bounded), a size cap and the
 * `system-image-server` User-Agent. Every failure is a GeneratorError that names the URL;
 * downloads go to a caller-chosen temporary path and are hashed while written, so nothing
 * half-downloaded is ever published and nothing is re-read to checksum it.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { unlink } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Agent, interceptors, request, type Dispatcher } from "undici";
import { GeneratorError } from "../errors.js";

export const USER_AGENT = "system-image-server";

export interface FetchOptions {
  connectTimeoutMs?: number;
  /** Max wait for response headers, and max silence between body chunks. */
  readTimeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
  maxRedirects?: number;
  /** Refuse bodies larger than this (bytes). */
  maxBytes?: number;
  /**
   * Slowest acceptable body, averaged over each readTimeoutMs window: a server that drips a
   * byte a second never trips the silence timeout, so without this it holds an import forever.
   */
  minBytesPerSecond?: number;
  /** Called as download bytes arrive (for progress bars); total from Content-Length. */
  onProgress?: (url: string, bytes: number, total?: number) => void;
}

export interface Downloaded {
  size: number;
  sha256: string;
}

export interface Fetcher {
  /** A small text document (monitor value, channels.json, index.json). */
  text(url: string, opts?: FetchOptions): Promise<string>;
  /** Streams `url` into `dest`; `expectArchive` refuses HTML pages and non-archives. */
  download(url: string, dest: string, opts?: FetchOptions & { expectArchive?: boolean }): Promise<Downloaded>;
}

const DEFAULTS: Required<Omit<FetchOptions, "onProgress">> & Pick<FetchOptions, "onProgress"> = {
  connectTimeoutMs: 10_000,
  readTimeoutMs: 30_000,
  retries: 2,
  retryDelayMs: 500,
  maxRedirects: 5,
  maxBytes: 16 * 1024 ** 3,
  minBytesPerSecond: 1024,
};

/** Failures worth another try: network errors, timeouts, 5xx. A 404 or an HTML page is final. */
class Retryable extends Error {}

const agents = new Map<string, Dispatcher>();
type Resolved = typeof DEFAULTS;

function dispatcher(o: Resolved): Dispatcher {
  const key = `${o.connectTimeoutMs}/${o.readTimeoutMs}/${o.maxRedirects}`;
  let d = agents.get(key);
  if (!d) {
    d = new Agent({ connect: { timeout: o.connectTimeoutMs }, headersTimeout: o.readTimeoutMs, bodyTimeout: o.readTimeoutMs }).compose(
      interceptors.redirect({ maxRedirections: o.maxRedirects }),
    );
    agents.set(key, d);
  }
  return d;
}

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return "connect timeout";
    case "UND_ERR_HEADERS_TIMEOUT":
      return "timed out waiting for the response";
    case "UND_ERR_BODY_TIMEOUT":
      return "timed out while reading the body";
    case "ECONNREFUSED":
      return "connection refused";
    default:
      return e.message?.replace(/^Error: /, "") ?? String(err);
  }
}

/** Magic numbers of what a generator may download: xz, gzip, or a plain tar ("ustar" at 257). */
export function looksLikeArchive(head: Buffer): boolean {
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true;
  if (head[0] === 0x1f && head[1] === 0x8b) return true;
  return head.length >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
}

async function attempt(url: string, o: Resolved, sink: (body: AsyncIterable<Buffer>, headers: Record<string, unknown>) => Promise<void>): Promise<void> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { dispatcher: dispatcher(o), headers: { "user-agent": USER_AGENT } });
  } catch (err) {
    const msg = reason(err);
    if (/redirect/i.test(msg)) throw new GeneratorError(`Cannot download ${url}: too many redirects`);
    throw new Retryable(msg);
  }
  if (res.statusCode >= 400) {
    await res.body.dump().catch(() => {});
    const msg = `HTTP ${res.statusCode}`;
    if (res.statusCode >= 500) throw new Retryable(msg);
    throw new GeneratorError(`Cannot download ${url}: ${msg}`);
  }
  if (res.statusCode >= 300) {
    await res.body.dump().catch(() => {});
    throw new GeneratorError(`Cannot download ${url}: too many redirects (HTTP ${res.statusCode})`);
  }
  const declared = Number(res.headers["content-length"] ?? NaN);
  if (declared > o.maxBytes) {
    await res.body.dump().catch(() => {});
    throw new GeneratorError(`Cannot download ${url}: ${declared} bytes is more than the cap of ${o.maxBytes}`);
  }
  let received = 0;
  let windowStart = Date.now();
  let windowBytes = 0;
  const counted = (async function* () {
    for await (const chunk of res.body) {
      received += (chunk as Buffer).length;
      if (received > o.maxBytes) throw new GeneratorError(`Cannot download ${url}: body is larger than the cap of ${o.maxBytes} bytes`);
      windowBytes += (chunk as Buffer).length;
      const elapsed = Date.now() - windowStart;
      if (elapsed >= o.readTimeoutMs) {
        if (windowBytes < (o.minBytesPerSecond * elapsed) / 1000) {
          res.body.destroy();
          throw new Retryable(`too slow: ${windowBytes} bytes in ${(elapsed / 1000).toFixed(1)} s (less than ${o.minBytesPerSecond} bytes/s)`);
        }
        windowStart = Date.now();
        windowBytes = 0;
      }
      yield chunk as Buffer;
    }
  })();
  try {
    await sink(counted, res.headers);
  } catch (err) {
    if (err instanceof GeneratorError || err instanceof Retryable) throw err;
    throw new Retryable(reason(err));
  }
  // A body that stops before its Content-Length is a truncated download, not a file.
  if (Number.isFinite(declared) && received !== declared) {
    throw new Retryable(`truncated body (${received} of ${declared} bytes)`);
  }
}

async function withRetries(url: string, opts: FetchOptions | undefined, run: (o: Resolved) => Promise<void>): Promise<void> {
  const o = { ...DEFAULTS, ...opts };
  let last = "";
  for (let i = 0; i <= o.retries; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, o.retryDelayMs * 2 ** (i - 1)));
    try {
      await run(o);
      return;
    } catch (err) {
      if (!(err instanceof Retryable)) throw err;
      last = err.message;
    }
  }
  throw new GeneratorError(`Cannot download ${url}: ${last}${o.retries ? ` (after ${o.retries + 1} attempts)` : ""}`);
}

export const httpFetcher: Fetcher = {
  async text(url, opts) {
    let out = "";
    await withRetries(url, { maxBytes: 64 << 20, ...opts }, (o) =>
      attempt(url, o, async (body) => {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c);
        out = Buffer.concat(chunks).toString("utf8");
      }),
    );
    return out;
  },

  async download(url, dest, opts = {}) {
    let result: Downloaded = { size: 0, sha256: "" };
    await withRetries(url, opts, (o) =>
      attempt(url, o, async (body, headers) => {
        const hash = createHash("sha256");
        let size = 0;
        let head = Buffer.alloc(0);
        const check = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            if (opts.expectArchive && head.length < 512) {
              head = Buffer.concat([head, chunk]);
              if (head.length >= 512 && !looksLikeArchive(head)) {
                const type = String(headers["content-type"] ?? "");
                const what = /html/i.test(type) || /^\s*</.test(head.toString("latin1")) ? "an HTML page" : "not an xz, gzip or tar archive";
                return cb(new GeneratorError(`Cannot download ${url}: the server sent ${what}`));
              }
            }
            hash.update(chunk);
            size += chunk.length;
            o.onProgress?.(url, size, Number(headers["content-length"]) || undefined);
            cb(null, chunk);
          },
          flush(cb) {
            if (opts.expectArchive && head.length < 512 && !looksLikeArchive(head)) {
              return cb(new GeneratorError(`Cannot download ${url}: the server sent ${size} bytes that are not an archive`));
            }
            cb();
          },
        });
        try {
          await pipeline(body, check, createWriteStream(dest));
        } catch (err) {
          await unlink(dest).catch(() => {});
          throw err;
        }
        result = { size, sha256: hash.digest("hex") };
      }),
    );
    return result;
  },
};
