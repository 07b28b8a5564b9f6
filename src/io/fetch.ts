/**
 * HTTP for generators (server-reference §5.3-§5.4): undici with connect, header and body
 * timeouts, bounded retries with backoff, redirects (bounded), a size cap and the
 * `system-image-server` User-Agent. Every failure is a GeneratorError that names the URL;
 * downloads go to a caller-chosen temporary path and are hashed while written, so nothing
 * half-downloaded is ever published and nothing is re-read to checksum it. Memory stays
 * bounded (backpressure down to TCP), and nothing the HTTP client does, even an internal
 * assertion of undici's, can take the process down (see http-exchange.ts).
 *
 * A hung or absent build server must cost seconds, not minutes, while an import holds the
 * global lock (issue 15 item 7): the wait for an answer (connect, then response headers) has
 * its own short timeout, apart from the no-progress timeout of a body; a refused connection
 * is not retried, and with a per-run HostMemory that host is not asked again in the run,
 * while a host that never answered gets a single attempt per file for the rest of the run.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { unlink } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GeneratorError } from "../errors.js";
import { Exchange, reason } from "./http-exchange.js";

export { fetchInternals, USER_AGENT } from "./http-exchange.js";

export interface FetchOptions {
  /** Max wait to connect, and then again for the response headers (the first byte of the answer). */
  connectTimeoutMs?: number;
  /** Max silence between body chunks (no progress), and the window of minBytesPerSecond. */
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
  /** What earlier requests of this run learnt about each host (one per import run). */
  hosts?: HostMemory;
}

/**
 * Per-run memory of build servers, by origin (scheme, host, port). A host that refused a
 * connection (nothing listens: a build server that is down) is not asked again during the
 * run; one whose every attempt ended without an answer gets one attempt per file instead of
 * 1 + retries. An answer of any kind (even a 404) clears the "no answer" mark.
 */
export class HostMemory {
  private readonly refusedBy = new Map<string, string>();
  private readonly silent = new Set<string>();

  refused(origin: string): string | undefined {
    return this.refusedBy.get(origin);
  }
  unresponsive(origin: string): boolean {
    return this.silent.has(origin);
  }
  noteRefused(origin: string, why: string): void {
    this.refusedBy.set(origin, why);
  }
  noteNoAnswer(origin: string): void {
    this.silent.add(origin);
  }
  noteAnswered(origin: string): void {
    this.silent.delete(origin);
  }
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

const DEFAULTS: Required<Omit<FetchOptions, "onProgress" | "hosts">> & Pick<FetchOptions, "onProgress" | "hosts"> = {
  connectTimeoutMs: 10_000,
  readTimeoutMs: 30_000,
  retries: 2,
  retryDelayMs: 500,
  maxRedirects: 5,
  maxBytes: 16 * 1024 ** 3,
  minBytesPerSecond: 1024,
};

/**
 * Failures worth another try: network errors, timeouts, 5xx. A 404 or an HTML page is final.
 * `kind` says what it tells about the host: it refused the connection, it never answered
 * (connect or response-header timeout), or it answered and something else went wrong.
 */
type FailureKind = "refused" | "no-answer" | "other";
class Retryable extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind = "other",
  ) {
    super(message);
  }
}

function failureKind(err: unknown): FailureKind {
  const e = err as { code?: string; errors?: { code?: string }[] };
  // Node's happy eyeballs (several addresses) reports an AggregateError of per-address errors.
  const codes = e.errors?.length ? e.errors.map((x) => x?.code) : [e.code];
  if (codes.every((c) => c === "ECONNREFUSED")) return "refused";
  if (e.code === "UND_ERR_CONNECT_TIMEOUT" || e.code === "UND_ERR_HEADERS_TIMEOUT") return "no-answer";
  return "other";
}

type Resolved = typeof DEFAULTS;

/** Magic numbers of what a generator may download: xz, gzip, or a plain tar ("ustar" at 257). */
export function looksLikeArchive(head: Buffer): boolean {
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true;
  if (head[0] === 0x1f && head[1] === 0x8b) return true;
  return head.length >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
}

async function attempt(
  url: string,
  o: Resolved,
  sink: (body: AsyncIterable<Buffer>, headers: Record<string, unknown>) => Promise<void>,
): Promise<void> {
  if (!/^https?:\/\//i.test(url) || !URL.canParse(url)) throw new GeneratorError(`Cannot download ${url}: not an http or https URL`);
  const ex = new Exchange(url, o);
  try {
    await fetchBody(url, o, ex, sink);
  } finally {
    ex.close();
  }
}

async function fetchBody(
  url: string,
  o: Resolved,
  ex: Exchange,
  sink: (body: AsyncIterable<Buffer>, headers: Record<string, unknown>) => Promise<void>,
): Promise<void> {
  let res: { status: number; headers: Record<string, unknown> };
  try {
    res = await ex.response;
  } catch (err) {
    const msg = reason(err);
    if (/redirect/i.test(msg)) throw new GeneratorError(`Cannot download ${url}: too many redirects`);
    throw new Retryable(msg, failureKind(err));
  }
  if (res.status >= 400) {
    const msg = `HTTP ${res.status}`;
    if (res.status >= 500) throw new Retryable(msg);
    throw new GeneratorError(`Cannot download ${url}: ${msg}`);
  }
  if (res.status >= 300) throw new GeneratorError(`Cannot download ${url}: too many redirects (HTTP ${res.status})`);
  const declared = Number(res.headers["content-length"] ?? NaN);
  if (declared > o.maxBytes) throw new GeneratorError(`Cannot download ${url}: ${declared} bytes is more than the cap of ${o.maxBytes}`);
  const body = ex.body;
  let received = 0;
  let windowStart = Date.now();
  let windowBytes = 0;
  const counted = (async function* () {
    for await (const chunk of body) {
      received += (chunk as Buffer).length;
      if (received > o.maxBytes) throw new GeneratorError(`Cannot download ${url}: body is larger than the cap of ${o.maxBytes} bytes`);
      windowBytes += (chunk as Buffer).length;
      const elapsed = Date.now() - windowStart;
      if (elapsed >= o.readTimeoutMs) {
        if (windowBytes < (o.minBytesPerSecond * elapsed) / 1000) {
          body.destroy();
          throw new Retryable(
            `too slow: ${windowBytes} bytes in ${(elapsed / 1000).toFixed(1)} s (less than ${o.minBytesPerSecond} bytes/s)`,
          );
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

function originOf(url: string): string | undefined {
  return URL.canParse(url) ? new URL(url).origin : undefined;
}

async function withRetries(url: string, opts: FetchOptions | undefined, run: (o: Resolved) => Promise<void>): Promise<void> {
  const o = { ...DEFAULTS, ...opts };
  const host = originOf(url);
  const memory = host === undefined ? undefined : o.hosts;
  const down = memory?.refused(host!);
  if (down)
    throw new GeneratorError(
      `Cannot download ${url}: ${host} refused the connection earlier in this run (${down}); not asked again before the next run`,
    );
  const silentBefore = memory?.unresponsive(host!) === true;
  const attempts = silentBefore ? 1 : o.retries + 1;
  let last: Retryable | undefined;
  let made = 0;
  while (made < attempts) {
    // Backoff: retryDelayMs, then twice as long each time.
    if (made > 0) await new Promise((r) => setTimeout(r, o.retryDelayMs * 2 ** (made - 1)));
    made++;
    try {
      await run(o);
      memory?.noteAnswered(host!);
      return;
    } catch (err) {
      if (!(err instanceof Retryable)) {
        memory?.noteAnswered(host!); // a 404, an HTML page, a cap: the host did answer
        throw err;
      }
      last = err;
      if (err.kind !== "no-answer") memory?.noteAnswered(host!);
      // Nothing listens there: trying again within seconds only holds the import up.
      if (err.kind === "refused") {
        memory?.noteRefused(host!, err.message);
        throw new GeneratorError(
          `Cannot download ${url}: ${err.message} (not retried${memory ? `; ${host} is not asked again in this run` : ""})`,
        );
      }
    }
  }
  if (last!.kind === "no-answer") memory?.noteNoAnswer(host!);
  const tries = silentBefore ? ` (1 attempt: ${host} did not answer earlier in this run)` : made > 1 ? ` (after ${made} attempts)` : "";
  throw new GeneratorError(`Cannot download ${url}: ${last!.message}${tries}`);
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
                const ct = headers["content-type"];
                const type = typeof ct === "string" ? ct : "";
                const what =
                  /html/i.test(type) || /^\s*</.test(head.toString("latin1")) ? "an HTML page" : "not an xz, gzip or tar archive";
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
