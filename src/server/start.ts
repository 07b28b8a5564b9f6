/**
 * `startServer`: the published tree on HTTP and/or HTTPS (the same tree on both, because the
 * client fetches metadata over https_base and files over http_base: client-protocol §1.1),
 * plus any extra listeners a caller brings (the admin dashboard).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { RequestCounts } from "./request-counts.js";
import type { Config } from "../config/types.js";
import { ConfigError } from "../errors.js";
import { DeviceWatch } from "./device-watch.js";
import { FleetCounter } from "../fleet/store.js";
import { startListeners, type ListenerSpec } from "./listener.js";
import { accessEntry, jsonLineLogger, type ServerLogger } from "./log.js";
import { rawHeader } from "./respond.js";
import { StaticTree, type RequestRecord, type StaticTreeOptions } from "./static-files.js";
import { readTlsMaterial } from "./tls.js";

export interface StartOptions {
  /** Bind address of the public listeners. Default 0.0.0.0. */
  address?: string;
  /**
   * Port overrides: a number (0 = any free port), null = off, undefined = from the config
   * (`public_http_port` / `public_https_port`, where "0" or absent = off).
   */
  httpPort?: number | null;
  httpsPort?: number | null;
  /** Default: JSON lines on stdout. */
  logger?: ServerLogger;
  /** Default true. Warnings are logged either way. */
  accessLog?: boolean;
  /** More listeners started and stopped with the public ones. */
  extraListeners?: Omit<ListenerSpec, "onClientError">[];
  /** How long close() waits for in-flight responses before cutting them. Default 10 s. */
  shutdownTimeoutMs?: number;
  staticOptions?: StaticTreeOptions;
  /** Count downloads and polling clients into the state database (src/fleet/). Default true. */
  fleet?: boolean;
}

export interface RunningServer {
  httpPort?: number;
  httpsPort?: number;
  /** Bound port of every listener by name ("http", "https", extra names). */
  ports: Record<string, number>;
  /** One URL per listener, e.g. `https://0.0.0.0:8443/`. */
  urls: Record<string, string>;
  /** Re-reads tls_cert / tls_key for new HTTPS connections (certificate renewal). */
  reloadTls(): Promise<void>;
  /** Responses of the public listeners by status and path class (for the admin /metrics). */
  requests: RequestCounts;
  /** Graceful stop of every listener; resolves when all sockets are closed. */
  close(): Promise<void>;
}

/**
 * Connections per public listener and worker (serve_max_connections). Each costs a few
 * tens of KB at most (file-stream.ts bounds its buffers), so 4096 stay well under 200 MB.
 */
const DEFAULT_MAX_CONNECTIONS = 4096;
/** serve_send_timeout default, as nginx's send_timeout. */
const DEFAULT_SEND_TIMEOUT_S = 60;
const sendTimeoutSeconds = (config: Config) => config.serve_send_timeout ?? DEFAULT_SEND_TIMEOUT_S;

/** Config port string → listen port; "0", "" or absent = off. */
function configPort(value: string | undefined): number | null {
  if (value === undefined || value.trim() === "") return null;
  const n = Number(value);
  return Number.isInteger(n) && n > 0 && n <= 65535 ? n : null;
}

/** Listen ports of the public listeners: options first, then the config; null = off. */
export function publicPorts(
  config: Config,
  opts: Pick<StartOptions, "httpPort" | "httpsPort">,
): { http: number | null; https: number | null } {
  return {
    http: opts.httpPort !== undefined ? opts.httpPort : configPort(config.public_http_port),
    https: opts.httpsPort !== undefined ? opts.httpsPort : configPort(config.public_https_port),
  };
}

/** A finished response as the fleet counter reads it (src/fleet/records.ts). */
function fleetRecord(req: IncomingMessage, res: ServerResponse, rec: RequestRecord) {
  return {
    method: req.method ?? "",
    path: rec.path ?? "",
    status: res.statusCode,
    bytes: rec.bytes,
    range: rawHeader(req, "range") ?? null,
    aborted: !res.writableFinished,
    remote: req.socket.remoteAddress ?? "",
    userAgent: rawHeader(req, "user-agent") ?? "",
    time: Date.now(),
  };
}

/** The request handler of the public tree: files, access log, unknown-device warnings, counts. */
export function publicHandler(
  listener: string,
  tree: StaticTree,
  watch: DeviceWatch,
  logger: ServerLogger,
  accessLog: boolean,
  counts?: RequestCounts,
  fleet?: FleetCounter,
): RequestListener {
  // Downloads and index polls (a Map lookup for every other response): src/fleet/.
  const countFleet = (req: IncomingMessage, res: ServerResponse, rec: RequestRecord) => {
    if (fleet?.wants(rec.path)) fleet.observe(fleetRecord(req, res, rec), rec.path!);
  };
  const finished = (req: IncomingMessage, res: ServerResponse, rec: RequestRecord, started: number) => {
    counts?.record(rec.path, res.statusCode);
    if (accessLog) {
      logger.log(accessEntry(listener, req, res, rec, started));
      countFleet(req, res, rec);
    }
    if (res.statusCode === 404 || rec.path === "/channels.json") {
      watch.observe({
        method: req.method,
        path: rec.path,
        status: res.statusCode,
        userAgent: rawHeader(req, "user-agent"),
        remote: req.socket.remoteAddress,
      });
    }
  };
  return (req: IncomingMessage, res: ServerResponse) => {
    const rec: RequestRecord = { bytes: 0 };
    if (!accessLog) {
      // Status and path are settled when handle() returns (it writes the head at once), and
      // without an access line nothing waits for the end: no listener per request.
      tree.handle(req, res, rec);
      // Whether a download completed is known only at its end: wait for it when it may count.
      if (fleet?.wants(rec.path)) res.once("close", () => countFleet(req, res, rec));
      return finished(req, res, rec, 0);
    }
    const started = performance.now();
    res.once("close", () => finished(req, res, rec, started));
    tree.handle(req, res, rec);
  };
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const address = opts.address ?? "0.0.0.0";
  const logger = opts.logger ?? jsonLineLogger((lines) => process.stdout.write(lines + "\n"));
  const accessLog = opts.accessLog ?? true;
  const tree = new StaticTree(config.publish_path, { sendTimeoutMs: sendTimeoutSeconds(config) * 1000, ...opts.staticOptions });
  const watch = new DeviceWatch(config.publish_path, logger);
  const requests = new RequestCounts();
  const { http: httpPort, https: httpsPort } = publicPorts(config, opts);
  const tlsFiles = () => {
    if (!config.tls_cert || !config.tls_key)
      throw new ConfigError(`Cannot serve HTTPS: tls_cert and tls_key must be set in ${config.path}`);
    return readTlsMaterial(config.tls_cert, config.tls_key);
  };

  const onClientError = (name: string) => (info: { status: number; code: string; remote?: string }) => {
    requests.record(undefined, info.status);
    logger.log({ level: "info", event: "client-error", listener: name, status: info.status, code: info.code, remote: info.remote });
  };
  const maxConnections = config.serve_max_connections ?? DEFAULT_MAX_CONNECTIONS;
  const onConnectionLimit = (name: string) => (info: { limit: number; refused: number }) => {
    logger.log({
      level: "warn",
      event: "connection-limit",
      listener: name,
      limit: info.limit,
      refused: info.refused,
      pid: process.pid,
      msg: `${info.limit} connections open on ${name} (serve_max_connections): refused ${info.refused} new connection(s)`,
    });
  };
  const limits = (name: string) => ({ maxConnections, onConnectionLimit: onConnectionLimit(name) });
  if (httpPort === null && httpsPort === null && (opts.extraListeners ?? []).length === 0) {
    throw new ConfigError(
      `Cannot serve: public_http_port and public_https_port are both 0 or unset in ${config.path} (use --http-port / --https-port)`,
    );
  }
  const tls = httpsPort !== null ? await tlsFiles() : undefined;
  const fleet =
    opts.fleet === false
      ? undefined
      : new FleetCounter(config.state_path, config.publish_path, {
          warn: (msg) => logger.log({ level: "warn", event: "fleet-counting", msg }),
        });
  const specs: ListenerSpec[] = [];
  if (httpPort !== null) {
    specs.push({
      name: "http",
      address,
      port: httpPort,
      handler: publicHandler("http", tree, watch, logger, accessLog, requests, fleet),
      onClientError: onClientError("http"),
      ...limits("http"),
    });
  }
  if (httpsPort !== null) {
    specs.push({
      name: "https",
      address,
      port: httpsPort,
      tls,
      handler: publicHandler("https", tree, watch, logger, accessLog, requests, fleet),
      onClientError: onClientError("https"),
      ...limits("https"),
    });
  }
  specs.push(...(opts.extraListeners ?? []));

  let group;
  try {
    group = await startListeners(specs, opts.shutdownTimeoutMs ?? 10_000);
  } catch (err) {
    fleet?.close();
    throw err;
  }
  const { ports, urls } = group;
  return {
    httpPort: ports.http,
    httpsPort: ports.https,
    ports,
    urls,
    requests,
    async reloadTls() {
      const https = group.listeners.filter((l) => l.spec.name === "https");
      if (https.length === 0) return;
      const tls = await tlsFiles();
      for (const l of https) l.setTls(tls);
    },
    async close() {
      await group.close();
      tree.close();
      // After the listeners: the responses cut or finished by close() are counted too.
      fleet?.close();
      logger.flush?.();
    },
  };
}
