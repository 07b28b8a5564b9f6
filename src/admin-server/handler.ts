/**
 * The admin listener's request handler: `/` the dashboard, `/metrics` for Prometheus,
 * `/healthz` for a supervisor or load balancer, and `POST /verify` (the dashboard's
 * "Verify now" button). It only ever listens on admin_address:admin_port, never on the
 * public ports (see operations.ts).
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { Config } from "../config/types.js";
import { errorMessage } from "../errors.js";
import { parseChannels } from "../model/channels.js";
import { accessEntry, type ServerLogger } from "../server/log.js";
import type { ImportHistory } from "../state/history.js";
import type { SchedulerStatus } from "../scheduler/scheduler.js";
import { renderDashboard } from "./dashboard.js";
import { readFleet } from "./fleet.js";
import type { HistoryStatsCache } from "./history-stats.js";
import type { KeyringCatalog } from "./keyrings.js";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.js";
import type { CountsSnapshot } from "./request-counts.js";
import type { VerificationStore } from "./verification.js";

export interface AdminDeps {
  config: Config;
  history: ImportHistory;
  stats: HistoryStatsCache;
  keyrings: KeyringCatalog;
  verification: VerificationStore;
  /** null when the scheduler is off. */
  scheduler: () => SchedulerStatus | null;
  /** Counts of the public listeners (all workers). */
  requestCounts: () => Promise<CountsSnapshot>;
  /** Starts a verification on demand (after any import in progress). */
  verifyNow: () => void;
  logger: ServerLogger;
  accessLog?: boolean;
  /** Runs shown on the dashboard. Default 25. */
  historyRuns?: number;
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): number {
  const data = Buffer.from(body);
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": String(data.length),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(req.method === "HEAD" ? undefined : data);
  return req.method === "HEAD" ? 0 : data.length;
}

/** 200 when the published tree is there and channels.json (if any) parses; 503 otherwise. */
async function health(config: Config): Promise<{ ok: boolean; error?: string }> {
  try {
    if (!(await stat(config.publish_path)).isDirectory()) return { ok: false, error: `${config.publish_path} is not a directory` };
    const file = join(config.publish_path, "channels.json");
    const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => (err.code === "ENOENT" ? "" : Promise.reject(err)));
    parseChannels(text, file);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: errorMessage(err) };
  }
}

/**
 * A browser on the operator's machine can be made to POST to a loopback port by any web page;
 * a form of ours sends our own Origin (or none, from curl), anything else is refused. Behind
 * a reverse proxy the public host arrives as X-Forwarded-Host.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin || origin === "null") return origin === undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const forwarded = req.headers["x-forwarded-host"];
  const hosts = [req.headers.host, ...(typeof forwarded === "string" ? forwarded.split(",").map((h) => h.trim()) : [])];
  return hosts.includes(host);
}

export function createAdminHandler(deps: AdminDeps): RequestListener {
  const { config, logger } = deps;
  const route = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const path = new URL(req.url ?? "/", "http://admin").pathname;
    const get = req.method === "GET" || req.method === "HEAD";
    if (path === "/verify") {
      if (req.method !== "POST") return send(req, res, 405, "text/plain; charset=utf-8", "Use POST\n", { Allow: "POST" });
      if (!sameOrigin(req)) return send(req, res, 403, "text/plain; charset=utf-8", "Cross-origin request refused\n");
      deps.verifyNow();
      // Back to the dashboard, which shows the verification as running (POST/redirect/GET).
      return send(req, res, 303, "text/plain; charset=utf-8", "Verification started\n", { Location: "./" });
    }
    if (!get) return send(req, res, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", { Allow: "GET, HEAD" });
    if (path === "/healthz") {
      const h = await health(config);
      return send(req, res, h.ok ? 200 : 503, "application/json", JSON.stringify(h.ok ? { status: "ok" } : { status: "error", error: h.error }) + "\n");
    }
    if (path === "/metrics") {
      const fleet = await readFleet(config, { images: false });
      const body = renderMetrics({
        stats: deps.stats.get(),
        keyrings: await deps.keyrings.list(fleet),
        requests: await deps.requestCounts(),
        verification: deps.verification.last(),
        scheduler: deps.scheduler(),
      });
      return send(req, res, 200, METRICS_CONTENT_TYPE, body);
    }
    if (path === "/" || path === "/index.html") {
      const fleet = await readFleet(config);
      // First: it marks runs whose process is gone as interrupted, and the table shows that.
      const stats = deps.stats.get();
      const body = renderDashboard({
        now: new Date(),
        title: config.public_fqdn ?? "system-image server",
        publishPath: config.publish_path,
        fleet,
        keyrings: await deps.keyrings.list(fleet),
        runs: deps.history.listRuns(deps.historyRuns ?? 25),
        stats,
        verification: { last: deps.verification.last(), running: deps.verification.running() },
        scheduler: deps.scheduler(),
      });
      return send(req, res, 200, "text/html; charset=utf-8", body, { "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'" });
    }
    return send(req, res, 404, "text/plain; charset=utf-8", "Not Found\n");
  };

  return (req, res) => {
    const started = performance.now();
    route(req, res).then(
      (bytes) => {
        if (deps.accessLog !== false) logger.log(accessEntry("admin", req, res, { bytes }, started));
      },
      (err: unknown) => {
        logger.log({ level: "error", event: "admin-error", path: req.url, msg: `Cannot answer ${req.method} ${req.url}: ${errorMessage(err)}` });
        if (!res.headersSent) send(req, res, 500, "text/plain; charset=utf-8", `Internal error: ${errorMessage(err)}\n`);
        else res.destroy();
      },
    );
  };
}
