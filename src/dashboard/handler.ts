/**
 * The admin listener's request handler: `/` the dashboard, `/metrics` for Prometheus,
 * `/healthz` for a supervisor or load balancer, `POST /verify` (the dashboard's
 * "Verify now" button) and `POST /rollout` (its Pause/Resume buttons of staged rollouts).
 * It only ever listens on admin_address:admin_port, never on the public ports (see
 * operations.ts), and only for its own Host names and, with admin_token_file, for holders
 * of the token (access.ts).
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
import { createAccessGate, redactToken, sameOrigin } from "./access.js";
import type { AdminToken } from "./auth.js";
import { renderDashboard } from "./dashboard.js";
import { readFleet } from "./fleet.js";
import type { HistoryStatsCache } from "./history-stats.js";
import type { HostPolicy } from "./host-check.js";
import { expiredKeyrings, keyringWarnDays } from "./keyring-watch.js";
import type { KeyringCatalog } from "./keyrings.js";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.js";
import { rolloutStatus } from "../rollout/actions.js";
import { summarize } from "../rollout/describe.js";
import { rolloutMetricLines } from "../rollout/metrics.js";
import { fleetMetricLines } from "../fleet/metrics.js";
import { mirrorMetricLines } from "../mirror/metrics.js";
import { loadAdoption, renderAdoption } from "./adoption.js";
import { handleRolloutPost } from "./rollouts.js";
import { HTML, PAGE_CSP, TEXT, send } from "./reply.js";
import type { CountsSnapshot } from "../server/request-counts.js";
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
  /** Host names this listener answers (DNS rebinding). */
  hosts: HostPolicy;
  /** admin_token_file's token; absent = no authentication. */
  token?: AdminToken;
  /** Runs shown on the dashboard. Default 25. */
  historyRuns?: number;
  /** The rollouts' clock (tests); default the system time. */
  now?: () => Date;
}

/** One reason /healthz answers 503. */
export interface HealthProblem {
  check: "tree" | "keyring" | "tree-verification";
  message: string;
  [field: string]: unknown;
}

/**
 * 200 while devices can update from the tree; 503 with the reasons when they cannot: the tree
 * is unreadable or channels.json does not parse, a published keyring has expired (devices
 * refuse it, issue 14.4), or the last tree verification (after each scheduled import and
 * "Verify now") failed.
 */
async function health(deps: AdminDeps, now: Date): Promise<HealthProblem[]> {
  const { config } = deps;
  try {
    if (!(await stat(config.publish_path)).isDirectory()) return [{ check: "tree", message: `${config.publish_path} is not a directory` }];
    const file = join(config.publish_path, "channels.json");
    const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => (err.code === "ENOENT" ? "" : Promise.reject(err)));
    parseChannels(text, file);
  } catch (err) {
    return [{ check: "tree", message: errorMessage(err) }];
  }
  const problems: HealthProblem[] = [];
  const keyrings = await deps.keyrings.list(await readFleet(config, { images: false }));
  for (const k of expiredKeyrings(keyrings, now)) {
    const at = new Date(k.expiry! * 1000).toISOString();
    problems.push({
      check: "keyring",
      keyring: k.path,
      type: k.type ?? null,
      expiry: at,
      message: `keyring ${k.path} expired on ${at}: devices refuse it`,
    });
  }
  const v = deps.verification.last();
  if (v?.report && !v.report.ok) {
    problems.push({
      check: "tree-verification",
      started_at: v.started_at,
      errors: v.report.errors,
      message: `tree verification of ${v.started_at} failed with ${v.report.errors} error(s)`,
    });
  }
  return problems;
}

export function createAdminHandler(deps: AdminDeps): RequestListener {
  const { config, logger } = deps;
  const gate = createAccessGate({ hosts: deps.hosts, token: deps.token, logger });
  const route = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<number> => {
    const path = url.pathname;
    const get = req.method === "GET" || req.method === "HEAD";
    if (path === "/verify") {
      if (req.method !== "POST") return send(req, res, 405, TEXT, "Use POST\n", { Allow: "POST" });
      if (!sameOrigin(req)) return send(req, res, 403, TEXT, "Cross-origin request refused\n");
      deps.verifyNow();
      // Back to the dashboard, which shows the verification as running (POST/redirect/GET).
      return send(req, res, 303, TEXT, "Verification started\n", { Location: "./" });
    }
    if (path === "/rollout") return handleRolloutPost(req, res, { config, now: deps.now });
    if (!get) return send(req, res, 405, TEXT, "Method Not Allowed\n", { Allow: "GET, HEAD" });
    if (path === "/healthz") {
      const problems = await health(deps, new Date());
      const body =
        problems.length === 0 ? { status: "ok" } : { status: "error", error: problems.map((p) => p.message).join("; "), problems };
      return send(req, res, problems.length === 0 ? 200 : 503, "application/json", JSON.stringify(body) + "\n");
    }
    if (path === "/metrics") {
      const fleet = await readFleet(config, { images: false });
      const body = renderMetrics({
        stats: deps.stats.get(),
        keyrings: await deps.keyrings.list(fleet),
        requests: await deps.requestCounts(),
        verification: deps.verification.last(),
        scheduler: deps.scheduler(),
        // si_channel_schedule_enabled; devices gone from channels.json leave the alerting gauges.
        config,
        fleet,
        // Complete families read from the state database (issue 16, 17).
        extra: [
          ...mirrorMetricLines(config.state_path, config),
          ...fleetMetricLines(config.state_path, config.publish_path),
          ...rolloutMetricLines(config.state_path),
        ],
      });
      return send(req, res, 200, METRICS_CONTENT_TYPE, body);
    }
    if (path === "/" || path === "/index.html") {
      const fleet = await readFleet(config);
      // First: it marks runs whose process is gone as interrupted, and the table shows that.
      const stats = deps.stats.get();
      const now = deps.now?.() ?? new Date();
      const body = renderDashboard({
        now: new Date(),
        rollouts: rolloutStatus(config.state_path).map((r) => summarize(r, now)),
        adoption: renderAdoption(loadAdoption(config)),
        title: config.public_fqdn ?? "system-image server",
        publishPath: config.publish_path,
        fleet,
        keyrings: await deps.keyrings.list(fleet),
        warnDays: keyringWarnDays(config),
        runs: deps.history.listRuns(deps.historyRuns ?? 25),
        stats,
        verification: { last: deps.verification.last(), running: deps.verification.running() },
        scheduler: deps.scheduler(),
        loggedIn: deps.token !== undefined,
      });
      return send(req, res, 200, HTML, body, { "Content-Security-Policy": PAGE_CSP });
    }
    return send(req, res, 404, TEXT, "Not Found\n");
  };

  return (req, res) => {
    const started = performance.now();
    const target = req.url ?? "/";
    // The access log (and any error line) shows the request without a `?token=` value.
    req.url = redactToken(target);
    Promise.resolve()
      .then(async () => {
        const url = new URL(target, "http://admin");
        return (await gate(req, res, url)) ?? route(req, res, url);
      })
      .then(
        (bytes) => {
          if (deps.accessLog !== false) logger.log(accessEntry("admin", req, res, { bytes }, started));
        },
        (err: unknown) => {
          logger.log({
            level: "error",
            event: "admin-error",
            path: req.url,
            msg: `Cannot answer ${req.method} ${req.url}: ${errorMessage(err)}`,
          });
          if (!res.headersSent) send(req, res, 500, TEXT, `Internal error: ${errorMessage(err)}\n`);
          else res.destroy();
        },
      );
  };
}
