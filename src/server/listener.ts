/**
 * One HTTP or HTTPS listening socket with sane timeouts and a graceful close. Shared by the
 * public file server and any later listener (admin dashboard) started by `si serve`.
 */
import { createServer as createHttpServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { SiError } from "../errors.js";
import { connectionClosed, connectionOpened } from "./reclaim.js";
import type { TlsMaterial } from "./tls.js";

export interface ListenerSpec {
  /** Name in logs and in the returned port map ("http", "https", "admin", ...). */
  name: string;
  address: string;
  /** 0 picks a free port. */
  port: number;
  handler: RequestListener;
  /** HTTPS when present. */
  tls?: TlsMaterial;
  /** Called for requests Node rejects before they reach the handler (bad syntax, 431, ...). */
  onClientError?: (info: { status: number; code: string; remote?: string }) => void;
  /**
   * Most connections open at once (serve_max_connections); more are closed as they are
   * accepted. Default: no limit.
   */
  maxConnections?: number;
  /** Called when connections were refused at the limit: at once, then at most every 10 s. */
  onConnectionLimit?: (info: { limit: number; refused: number }) => void;
}

/** Least time between two reports of refused connections. */
const LIMIT_REPORT_MS = 10_000;

/**
 * Limits that keep slow or idle peers from holding the server: idle keep-alive sockets go
 * after 5 s, a request must have sent its headers within 20 s (whole request 30 s: GET and
 * HEAD have no body), and a socket with no traffic either way for 2 min is dropped (a stalled
 * download). Idle sockets cost a little memory each and never block other requests.
 */
const TIMEOUTS = {
  keepAliveTimeout: 5_000,
  headersTimeout: 20_000,
  requestTimeout: 30_000,
  socketIdle: 120_000,
  tlsHandshake: 20_000,
};

export class Listener {
  readonly server: Server | HttpsServer;
  private closing = false;
  /**
   * Every open connection: the TCP socket until its TLS handshake is done, then the TLS
   * socket (plain HTTP: the TCP socket). Node's closeAllConnections() knows only sockets
   * that reached HTTP, so a handshake that never finishes held close() open for as long as
   * handshakeTimeout, and longer when the peer trickled bytes (issue 14.5).
   */
  private readonly sockets = new Set<Socket>();
  private refused = 0;
  private lastReport = -Infinity;

  constructor(readonly spec: ListenerSpec) {
    const handler: RequestListener = (req, res) => {
      // Finish the in-flight response, then let the socket go (graceful shutdown).
      if (this.closing) res.setHeader("Connection", "close");
      spec.handler(req, res);
    };
    const options = {
      keepAliveTimeout: TIMEOUTS.keepAliveTimeout,
      headersTimeout: TIMEOUTS.headersTimeout,
      requestTimeout: TIMEOUTS.requestTimeout,
      connectionsCheckingInterval: 5_000,
      noDelay: true,
    };
    this.server = spec.tls
      ? createHttpsServer({ ...options, cert: spec.tls.cert, key: spec.tls.key, handshakeTimeout: TIMEOUTS.tlsHandshake }, handler)
      : createHttpServer(options, handler);
    this.server.setTimeout(TIMEOUTS.socketIdle);
    this.server.on("connection", (socket: Socket) => {
      connectionOpened();
      socket.once("close", connectionClosed);
      this.track(socket);
    });
    if (spec.tls) {
      this.server.on("secureConnection", (tls: TLSSocket) => {
        // The TLS socket now stands for the connection (its HTTP state is on it).
        const raw = (tls as unknown as { _parent?: Socket })._parent;
        if (raw) this.sockets.delete(raw);
        this.track(tls);
      });
    }
    if (spec.maxConnections !== undefined) {
      this.server.maxConnections = spec.maxConnections;
      // Node closes the connection before any byte is read (net.Server 'drop').
      this.server.on("drop", () => this.dropped());
    }
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => this.clientError(err, socket));
    // Handshake failures (scanners, clients that distrust a self-signed cert) are noise.
    this.server.on("tlsClientError", () => undefined);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    if (this.closing) this.closeIfIdle(socket);
  }

  private dropped(): void {
    this.refused++;
    const now = performance.now();
    if (now - this.lastReport < LIMIT_REPORT_MS) return;
    this.lastReport = now;
    this.spec.onConnectionLimit?.({ limit: this.spec.maxConnections!, refused: this.refused });
    this.refused = 0;
  }

  /**
   * Closes a connection that has no response in progress: an unfinished TLS handshake, an
   * idle keep-alive, or a request whose headers never came. `_httpMessage` is the response
   * node:http has attached to the socket (long-standing; typed nowhere).
   */
  private closeIfIdle(socket: Socket): void {
    if (!(socket as unknown as { _httpMessage?: unknown })._httpMessage) socket.destroy();
  }

  /** Same answers as Node's default clientError handling, plus a report for the log. */
  private clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const code = err.code ?? "";
    if (code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      code === "HPE_HEADER_OVERFLOW" ? 431 : code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : code === "HPE_URI_TOO_LONG" ? 414 : 400;
    const reason = { 400: "Bad Request", 408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large" }[status];
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    this.spec.onClientError?.({ status, code, remote: (socket as { remoteAddress?: string }).remoteAddress });
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    const { address, port, name } = this.spec;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const hint = err.code === "EACCES" ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" : "";
        reject(
          new SiError(`Cannot listen on ${address}:${port} (${name}): ${err.code ?? err.message}${hint}`, "Exception", { cause: err }),
        );
      };
      this.server.once("error", onError);
      this.server.listen(port, address, () => {
        this.server.off("error", onError);
        resolve(this.port);
      });
    });
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === "object" && a !== null ? a.port : 0;
  }

  /** New certificate/key for new connections (e.g. after a renewal); HTTPS only. */
  setTls(tls: TlsMaterial): void {
    if ("setSecureContext" in this.server) this.server.setSecureContext({ cert: tls.cert, key: tls.key });
  }

  /**
   * Stops accepting, lets in-flight responses finish (they get `Connection: close`), closes
   * every other connection at once (TLS handshakes, idle keep-alives, requests still
   * sending their headers) and idle ones as they become idle, and after `timeoutMs` cuts
   * what is left: the bound holds for every connection state (issue 14.5).
   */
  close(timeoutMs: number): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      const sweep = setInterval(() => {
        this.server.closeIdleConnections();
        for (const s of this.sockets) this.closeIfIdle(s);
      }, 100);
      const force = setTimeout(() => {
        this.server.closeAllConnections();
        for (const s of this.sockets) s.destroy();
      }, timeoutMs);
      force.unref();
      this.server.close(() => {
        clearInterval(sweep);
        clearTimeout(force);
        resolve();
      });
      this.server.closeIdleConnections();
      for (const s of this.sockets) this.closeIfIdle(s);
    });
  }
}

/** Listeners started together and stopped together. */
export interface ListenerGroup {
  listeners: Listener[];
  /** Bound port of every listener by name. */
  ports: Record<string, number>;
  /** One URL per listener, e.g. `https://0.0.0.0:8443/`. */
  urls: Record<string, string>;
  close(): Promise<void>;
}

/** Starts every spec in order; if one fails, closes those already started and rethrows. */
export async function startListeners(specs: ListenerSpec[], shutdownMs: number): Promise<ListenerGroup> {
  const listeners: Listener[] = [];
  const close = async () => {
    await Promise.all(listeners.map((l) => l.close(shutdownMs)));
  };
  try {
    for (const spec of specs) {
      const l = new Listener(spec);
      listeners.push(l);
      await l.listen();
    }
  } catch (err) {
    await close();
    throw err;
  }
  const ports: Record<string, number> = {};
  const urls: Record<string, string> = {};
  for (const l of listeners) {
    ports[l.spec.name] = l.port;
    const host = l.spec.address.includes(":") ? `[${l.spec.address}]` : l.spec.address;
    urls[l.spec.name] = `${l.spec.tls ? "https" : "http"}://${host}:${l.port}/`;
  }
  return { listeners, ports, urls, close };
}
