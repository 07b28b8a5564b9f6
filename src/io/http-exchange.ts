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

export class Exchange implements Dispatcher.DispatchHandler {
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

  constructor(url: string, o: ExchangeOptions) {
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
