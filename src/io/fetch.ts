/**
 * HTTP for generators (server-reference §5.3-§5.4): undici with connect, header and body
 * timeouts, bounded retries with backoff, redirects (bounded), a size cap and the
 * `system-image-server` User-Agent. Every failure is a GeneratorError that names the URL;
 * downloads go to a caller-chosen temporary path and are hashed while written, so nothing
 * half-downloaded is ever published and nothing is re-read to checksum it. Memory stays
 * bounded (backpressure down to TCP), and nothing the HTTP client does, even an internal
 * assertion of undici's, can take the process down (see Exchange).
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
import type { Socket } from "node:net";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Agent, buildConnector, interceptors, type Dispatcher } from "undici";
import { GeneratorError } from "../errors.js";

export const USER_AGENT = "system-image-server";

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

/**
 * One response, its body a Readable with backpressure, on an undici Agent of its own. The
 * Agent is private so that each socket it opens belongs to exactly this response: the two
 * guards below need to know whose body a socket carries. Connection reuse is lost, which
 * costs one TCP handshake per document (a few per import), never per byte.
 *
 * Why the guards (issue 13 item 7; nodejs/undici#5360, fixed by #5389/#5474 only in undici 8,
 * which needs Node 22; 7.30.x has it): backpressure pauses undici's llhttp parser. A build
 * server that answers `Connection: close` (python3 -m http.server, nginx with
 * keepalive_timeout 0) writes headers, body and FIN at once, so the socket can reach its end
 * while the parser is paused on the body's last bytes. undici's socket 'end' listener then
 * calls `parser.finish()`, which asserts `!this.paused`: an AssertionError thrown from an
 * event listener, i.e. an uncaught exception that kills the whole process.
 * 1. We listen to 'end' before undici does and resume a parser we paused. That costs no
 *    memory: a paused parser gives its unparsed bytes back to the socket (`unshift`), and a
 *    socket emits 'end' only once it holds none, so resuming parses zero bytes and just
 *    completes the message (Content-Length check included); the body is already queued.
 * 2. Whatever undici still throws from inside a socket event (the same `finish()` on its
 *    ECONNRESET path, or any other internal check) is caught around that socket's `emit` and
 *    fails this download, as a retryable error naming the URL, instead of the process.
 */
export const fetchInternals = {
  /** Guard 1 on. Only tests turn it off, to show that guard 2 alone keeps the process up. */
  resumeOnPeerClose: true,
  /** Body bytes held in memory per download before the parser, then TCP, is paused. */
  bodyHighWater: 256 * 1024,
};

class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private ended = false;
  private draining = false;
  private settle!: { resolve: (v: { status: number; headers: Record<string, unknown> }) => void; reject: (e: unknown) => void };
  readonly response = new Promise<{ status: number; headers: Record<string, unknown> }>(
    (resolve, reject) => (this.settle = { resolve, reject }),
  );
  readonly body = new Readable({
    highWaterMark: fetchInternals.bodyHighWater,
    read: () => this.controller?.resume(),
    destroy: (err, cb) => {
      if (!this.ended) this.controller?.abort(err ?? new Error("body closed"));
      cb(err);
    },
  });
  private readonly agent: Agent;

  constructor(url: string, o: Resolved) {
    const connect = buildConnector({ timeout: o.connectTimeoutMs });
    this.agent = new Agent({
      // The answer must start soon (connectTimeoutMs); a body may then pause up to readTimeoutMs.
      headersTimeout: o.connectTimeoutMs,
      bodyTimeout: o.readTimeoutMs,
      connect: (opts, cb) =>
        connect(opts, (...args) => {
          if (args[1]) this.guard(args[1]);
          cb(...args);
        }),
    });
    // Failures reach the caller through `response` or the body's iterator; these listeners
    // only keep an unread failure (after an early status error) from going unhandled.
    this.response.catch(() => {});
    this.body.on("error", () => {});
    const u = new URL(url);
    try {
      this.agent
        .compose(interceptors.redirect({ maxRedirections: o.maxRedirects }))
        .dispatch({ origin: u.origin, path: u.pathname + u.search, method: "GET", headers: { "user-agent": USER_AGENT } }, this);
    } catch (err) {
      this.fail(err);
    }
  }

  private guard(socket: Socket): void {
    socket.prependListener("end", () => {
      if (this.controller?.paused && fetchInternals.resumeOnPeerClose) {
        this.draining = true; // no pause from here on; there is nothing left to read anyway
        this.controller.resume();
      }
    });
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with Reflect.apply(emit, socket, ...) below
    const emit = socket.emit;
    socket.emit = ((event: string | symbol, ...args: unknown[]) => {
      try {
        return Reflect.apply(emit, socket, [event, ...args]) as boolean;
      } catch (err) {
        this.fail(new Error(`the HTTP client failed on the connection's ${String(event)}: ${reason(err)}`, { cause: err }));
        socket.destroy();
        return true;
      }
    }) as Socket["emit"];
  }

  fail(err: unknown): void {
    this.settle.reject(err);
    this.body.destroy(err as Error);
  }

  /** Drops the connection (a no-op for one the server closed). */
  close(): void {
    this.agent.destroy().catch(() => {});
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }
  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, unknown>): void {
    this.controller = controller;
    this.settle.resolve({ status, headers });
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.body.push(chunk) && !this.draining) controller.pause();
  }
  onResponseEnd(): void {
    this.ended = true;
    this.body.push(null);
  }
  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }
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
      // One line: undici's assertion messages span several.
      return (e.message?.replace(/^Error: /, "") ?? String(err)).replace(/\s+/g, " ").trim();
  }
}

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
