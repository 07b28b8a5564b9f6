/**
 * The undici side of a download (src/io/fetch.ts): one request on an Agent of its own, its
 * response body a Readable with backpressure, and the guards that keep undici's internal
 * assertions from taking the process down.
 */
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { Agent, buildConnector, interceptors, type Dispatcher } from "undici";

export const USER_AGENT = "system-image-server";

/** The timeouts and limits of one exchange (a subset of fetch.ts's resolved options). */
export interface ExchangeOptions {
  connectTimeoutMs: number;
  readTimeoutMs: number;
  maxRedirects: number;
}

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

/** What a response handler resolves with once the status line and headers are in. */
export interface ResponseHead {
  status: number;
  headers: Record<string, unknown>;
}

/**
 * One response as an undici DispatchHandler: the status and headers as a promise, the body as
 * a Readable with backpressure, and guard 1's per-response part (`peerClosed`). Used by the
 * download Exchange below and by `si verify-tree --server` (src/verify/remote-http.ts).
 */
export class ResponseHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private ended = false;
  private draining: boolean;
  private settle!: { resolve: (v: ResponseHead) => void; reject: (e: unknown) => void };
  readonly response = new Promise<ResponseHead>((resolve, reject) => (this.settle = { resolve, reject }));
  readonly body = new Readable({
    highWaterMark: fetchInternals.bodyHighWater,
    read: () => this.controller?.resume(),
    destroy: (err, cb) => {
      if (!this.ended) this.controller?.abort(err ?? new Error("body closed"));
      cb(err);
    },
  });

  /**
   * `pauses` false: the body is read as fast as it comes (a HEAD, a capped document), so the
   * parser is never paused and the response may share a keep-alive Agent with others.
   */
  constructor(pauses = true) {
    this.draining = !pauses;
    // Failures reach the caller through `response` or the body's iterator; these listeners
    // only keep an unread failure (after an early status error) from going unhandled.
    this.response.catch(() => {});
    this.body.on("error", () => {});
  }

  /** Sends the request through `dispatcher`; a synchronous throw fails this response. */
  dispatch(dispatcher: Dispatcher, method: "GET" | "HEAD", url: URL): void {
    try {
      dispatcher.dispatch({ origin: url.origin, path: url.pathname + url.search, method, headers: { "user-agent": USER_AGENT } }, this);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Guard 1: the peer closed the socket while we held the parser paused. */
  peerClosed(): void {
    if (this.controller?.paused && fetchInternals.resumeOnPeerClose) {
      this.draining = true; // no pause from here on; there is nothing left to read anyway
      this.controller.resume();
    }
  }

  fail(err: unknown): void {
    this.settle.reject(err);
    this.body.destroy(err as Error);
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

/** Guard 2: whatever undici throws from inside a socket event goes to `fail`, not the process. */
export function guardSocketEmit(socket: Socket, fail: (err: Error) => void): void {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with Reflect.apply(emit, socket, ...) below
  const emit = socket.emit;
  socket.emit = ((event: string | symbol, ...args: unknown[]) => {
    try {
      return Reflect.apply(emit, socket, [event, ...args]) as boolean;
    } catch (err) {
      fail(new Error(`the HTTP client failed on the connection's ${String(event)}: ${reason(err)}`, { cause: err }));
      socket.destroy();
      return true;
    }
  }) as Socket["emit"];
}

/** A download: one GET, redirects followed, on an undici Agent of its own (see above). */
export class Exchange extends ResponseHandler {
  private readonly agent: Agent;

  constructor(url: string, o: ExchangeOptions) {
    super();
    const connect = buildConnector({ timeout: o.connectTimeoutMs });
    this.agent = new Agent({
      // The answer must start soon (connectTimeoutMs); a body may then pause up to readTimeoutMs.
      headersTimeout: o.connectTimeoutMs,
      bodyTimeout: o.readTimeoutMs,
      connect: (opts, cb) =>
        connect(opts, (...args) => {
          const socket = args[1];
          if (socket) {
            socket.prependListener("end", () => this.peerClosed());
            guardSocketEmit(socket, (err) => this.fail(err));
          }
          cb(...args);
        }),
    });
    this.dispatch(this.agent.compose(interceptors.redirect({ maxRedirections: o.maxRedirects })), "GET", new URL(url));
  }

  /** Drops the connection (a no-op for one the server closed). */
  close(): void {
    this.agent.destroy().catch(() => {});
  }
}

/** A one-line reason for a failed exchange. */
export function reason(err: unknown): string {
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
