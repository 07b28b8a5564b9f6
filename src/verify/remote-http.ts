/**
 * The HTTP side of `si verify-tree --server` (remote.ts): HEAD and GET against a mirror, as a
 * device would send them (client-protocol §2: HEAD then GET on every URL, no Accept-Encoding),
 * with timeouts, a size cap on documents, an extra CA for HTTPS, and redirects followed only
 * within the mirror's own origin.
 *
 * Responses are src/io/http-exchange.ts's ResponseHandler, with the same two guards against
 * undici 7 asserting from a socket event when a paused parser meets the peer's FIN (see the
 * comment there). A download (--deep) pauses its parser when the hash is behind, so it runs on
 * an Agent of its own and guard 1 knows whose parser a closing socket holds; HEADs and capped
 * documents never pause and share one keep-alive Agent: a TLS handshake per document, on a
 * loaded machine, costs more than the whole check.
 */
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { createSecureContext, rootCertificates } from "node:tls";
import { Agent, buildConnector } from "undici";
import { SiError } from "../errors.js";
import { ResponseHandler, guardSocketEmit, reason, type ResponseHead } from "../io/http-exchange.js";

/** Why a request failed; `status` when the server answered with one (404, 500, a redirect). */
export class RemoteHttpError extends SiError {
  constructor(
    readonly url: string,
    readonly why: string,
    readonly status?: number,
  ) {
    super(`Cannot fetch ${url}: ${why}`);
  }
}

/** What verify-tree needs from a mirror; tests and other transports may implement it. */
export interface RemoteSource {
  /** The absolute URL of a host-absolute path ("/channels.json"). */
  url(path: string): string;
  /** Content-Length of a HEAD (null when the server sends none). */
  head(path: string): Promise<number | null>;
  /** A whole body, refused past `maxBytes` (documents, keyrings, signatures). */
  get(path: string, maxBytes: number): Promise<Buffer>;
  /** A body as a stream (pool files with --deep): the caller must consume or destroy it. */
  stream(path: string): Promise<Readable>;
  close(): Promise<void>;
}

export interface HttpSourceOptions {
  /** PEM CA certificate(s) trusted besides the system's roots. */
  ca?: string;
  connectTimeoutMs?: number;
  /** Max silence between body chunks. */
  readTimeoutMs?: number;
  /** Same-origin redirects followed per request (0 = none). */
  maxRedirects?: number;
  signal?: AbortSignal;
}

interface Answer extends ResponseHead {
  body: Readable;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Adds the hint a TLS failure needs: which flag makes a private certificate trusted. */
function explain(err: unknown, url: string, withCa: boolean): string {
  const why = reason(err);
  const code = (err as { code?: string }).code ?? "";
  const tls = /CERT|SELF_SIGNED|ISSUER/i.test(code) || /certificate|self[- ]signed|issuer/i.test(why);
  if (tls && url.startsWith("https:"))
    return `TLS certificate not trusted (${why})${withCa ? ": --ca does not vouch for it" : ": give --ca FILE to trust its CA"}`;
  return why;
}

/** A mirror over HTTP(S). */
export class HttpRemoteSource implements RemoteSource {
  private readonly base: URL;
  private readonly o: Required<Omit<HttpSourceOptions, "ca" | "signal">> & Pick<HttpSourceOptions, "ca" | "signal">;
  private readonly connect: buildConnector.connector;
  /** Keep-alive Agent of the requests that never pause (HEAD, documents). */
  private readonly shared: Agent;
  private readonly sharedInFlight = new Set<ResponseHandler>();

  constructor(baseUrl: string, opts: HttpSourceOptions = {}) {
    if (!/^https?:\/\//i.test(baseUrl) || !URL.canParse(baseUrl)) throw new SiError(`Cannot verify ${baseUrl}: not an http or https URL`);
    this.base = new URL(baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
    this.o = { connectTimeoutMs: 10_000, readTimeoutMs: 30_000, maxRedirects: 3, ...opts };
    // `ca` replaces the default trust store, so the system's roots are passed along with it,
    // in one SecureContext: parsing ~150 roots per connection costs more than the request.
    // One connector: its TLS session cache lets the per-download Agents resume sessions.
    const secureContext = opts.ca ? createSecureContext({ ca: [...rootCertificates, opts.ca] }) : undefined;
    this.connect = buildConnector({ timeout: this.o.connectTimeoutMs, ...(secureContext ? { secureContext } : {}) });
    // A socket of the shared Agent may carry any of its requests: a throw fails them all.
    this.shared = this.agent((socket) => guardSocketEmit(socket, (err) => this.sharedInFlight.forEach((x) => x.fail(err))));
  }

  private agent(onSocket: (socket: Socket) => void): Agent {
    return new Agent({
      // The answer must start soon (connectTimeoutMs); a body may then pause up to readTimeoutMs.
      headersTimeout: this.o.connectTimeoutMs,
      bodyTimeout: this.o.readTimeoutMs,
      connections: 4,
      connect: (opts, cb) =>
        this.connect(opts, (...args) => {
          if (args[1]) onSocket(args[1]);
          cb(...args);
        }),
    });
  }

  /** Starts one request: on the shared Agent, or (streaming) on an Agent of its own. */
  private exchange(method: "GET" | "HEAD", url: URL, streaming: boolean): ResponseHandler {
    const x = new ResponseHandler(streaming);
    if (!streaming) {
      this.sharedInFlight.add(x);
      x.body.once("close", () => this.sharedInFlight.delete(x));
      x.dispatch(this.shared, method, url);
      return x;
    }
    const own = this.agent((socket) => {
      socket.prependListener("end", () => x.peerClosed());
      guardSocketEmit(socket, (err) => x.fail(err));
    });
    x.body.once("close", () => void own.destroy().catch(() => {}));
    x.dispatch(own, method, url);
    return x;
  }

  url(path: string): string {
    // Host-absolute paths hang off the base's path (a mirror may live under a prefix).
    return new URL(path.replace(/^\/+/, ""), this.base).href;
  }

  /** One request, following same-origin redirects; the answer's status is < 300. */
  private async request(method: "GET" | "HEAD", path: string, streaming = false): Promise<Answer & { url: string }> {
    let url = this.url(path);
    for (let hops = 0; ; hops++) {
      this.o.signal?.throwIfAborted();
      const u = new URL(url);
      const h = this.exchange(method, u, streaming);
      const onAbort = () => h.fail(this.o.signal?.reason ?? new Error("aborted"));
      this.o.signal?.addEventListener("abort", onAbort, { once: true });
      // Until the body is done: an abort also stops a --deep download half-way.
      h.body.once("close", () => this.o.signal?.removeEventListener("abort", onAbort));
      let a: Answer;
      try {
        a = { ...(await h.response), body: h.body };
      } catch (err) {
        throw new RemoteHttpError(url, explain(err, url, this.o.ca !== undefined));
      }
      if (REDIRECTS.has(a.status)) {
        a.body.destroy();
        const loc = a.headers.location;
        const next = typeof loc === "string" && URL.canParse(loc, url) ? new URL(loc, url) : null;
        if (!next) throw new RemoteHttpError(url, `HTTP ${a.status} without a usable Location`, a.status);
        // A redirect elsewhere would verify another server than the one named.
        if (next.origin !== u.origin)
          throw new RemoteHttpError(url, `HTTP ${a.status} redirects to another origin (${next.href}): not followed`, a.status);
        if (hops >= this.o.maxRedirects) throw new RemoteHttpError(url, `more than ${this.o.maxRedirects} redirects`, a.status);
        url = next.href;
        continue;
      }
      if (a.status >= 300) {
        a.body.destroy();
        throw new RemoteHttpError(url, `HTTP ${a.status}`, a.status);
      }
      return { ...a, url };
    }
  }

  async head(path: string): Promise<number | null> {
    const a = await this.request("HEAD", path);
    a.body.resume();
    const n = Number(a.headers["content-length"] ?? NaN);
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  }

  async get(path: string, maxBytes: number): Promise<Buffer> {
    const a = await this.request("GET", path);
    const declared = Number(a.headers["content-length"] ?? NaN);
    if (declared > maxBytes) {
      a.body.destroy();
      throw new RemoteHttpError(a.url, `${declared} bytes is more than the cap of ${maxBytes} for a document`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const c of a.body) {
        size += (c as Buffer).length;
        if (size > maxBytes) {
          a.body.destroy();
          throw new RemoteHttpError(a.url, `body is larger than the cap of ${maxBytes} bytes for a document`);
        }
        chunks.push(c as Buffer);
      }
    } catch (err) {
      if (err instanceof RemoteHttpError) throw err;
      throw new RemoteHttpError(a.url, reason(err));
    }
    return Buffer.concat(chunks);
  }

  async stream(path: string): Promise<Readable> {
    return (await this.request("GET", path, true)).body;
  }

  async close(): Promise<void> {
    await this.shared.destroy().catch(() => {});
  }
}
