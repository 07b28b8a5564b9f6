/**
 * The single-instance duties of `si serve`, run in the main process only (never in a serve
 * worker): the import scheduler, the staged-rollout ticker (every minute, with or without
 * import_schedule; off with `--no-schedule`), the keyring expiry watch (a log line at start
 * and daily, keyring-watch.ts) and the admin listener (dashboard, /metrics, /healthz) on
 * `admin_address:admin_port`. Their logs go to the server's JSON-line log.
 */
import type { Config } from "../config/types.js";
import { renewKeyringIfDue } from "../keys/renew.js";
import { createLogger, type Logger } from "../io/log.js";
import type { ListenerSpec } from "../server/listener.js";
import type { ServerLogger } from "../server/log.js";
import { ImportScheduler, validateSchedule } from "../scheduler/scheduler.js";
import { RolloutTicker, type RolloutTickerOptions } from "../scheduler/rollout-ticker.js";
import { ImportHistory } from "../state/history.js";
import { readAdminToken, type AdminToken } from "./auth.js";
import { createAdminHandler } from "./handler.js";
import { HistoryStatsCache } from "./history-stats.js";
import { hostPolicy } from "./host-check.js";
import { KeyringWatch } from "./keyring-watch.js";
import { KeyringCatalog } from "./keyrings.js";
import type { CountsSnapshot } from "../server/request-counts.js";
import { VerificationStore } from "./verification.js";

export interface OperationsOptions {
  logger: ServerLogger;
  /** false: no scheduler even when import_schedule is set (`--no-schedule`). */
  schedule: boolean;
  /** Admin port: a number (0 = any free port), null = no admin listener, undefined = config. */
  adminPort?: number | null;
  accessLog?: boolean;
  /** Between two keyring expiry checks; default a day. */
  keyringCheckEveryMs?: number;
  /** The rollout ticker's clock, timer and download counts (tests). */
  rollouts?: Omit<RolloutTickerOptions, "log">;
}

export interface Operations {
  /** The admin listener to start with the others (null when off). Its name is "admin". */
  listener: ListenerSpec | null;
  scheduler: ImportScheduler | null;
  /** Ticks staged rollouts (null with `--no-schedule`). */
  rollouts: RolloutTicker | null;
  /** Where /metrics gets the public listeners' counts from (set once they run). */
  setRequestCounts(source: () => Promise<CountsSnapshot> | CountsSnapshot): void;
  /** Starts the scheduler and logs the admin URL; call once the listeners run. */
  start(adminUrl?: string): Promise<void>;
  /**
   * Stops the scheduler, waiting up to `waitMs` for an import in progress. Resolves false
   * when an import had to be abandoned (then `abandoned` is true): the caller should exit.
   */
  stop(waitMs: number): Promise<boolean>;
  readonly abandoned: boolean;
  /** Releases the history database; after the listeners have closed. */
  close(): void;
}

/** An io/log Logger whose JSON lines go through the server's logger (one stream, batched). */
export function serverLogBridge(logger: ServerLogger): Logger {
  return createLogger({ level: "info", json: true, write: (line) => logger.log(JSON.parse(line) as Record<string, unknown>) });
}

/** Validates the schedule and prepares everything; nothing listens or ticks yet. */
export function prepareOperations(config: Config, opts: OperationsOptions): Operations {
  const log = serverLogBridge(opts.logger);
  const expression = opts.schedule ? config.import_schedule : undefined;
  if (expression) validateSchedule(config, expression);
  // admin_port = 0 in the config means "no admin listener", as for the public ports.
  const port = opts.adminPort !== undefined ? opts.adminPort : config.admin_port === 0 ? null : config.admin_port;

  const verification = new VerificationStore(config, log.child({ component: "admin" }));
  const keyrings = new KeyringCatalog(config);
  const watch = new KeyringWatch(config, keyrings, opts.logger, opts.keyringCheckEveryMs);
  let scheduler: ImportScheduler | null = null;
  if (expression) {
    scheduler = new ImportScheduler(config, expression, {
      log,
      // Every scheduled import is followed by the keyring renewal check (when
      // keyring_auto_renew_days is set: an expired image-signing keyring bricks a fleet)
      // and a verification of what devices now see.
      afterRun: async () => {
        await renewKeyringIfDue(config, log.child({ component: "scheduler", trigger: "schedule" }));
        return verification.run("schedule");
      },
    });
  }
  // Staged rollouts are raised by si serve even without import_schedule (issue 17).
  const rollouts = opts.schedule ? new RolloutTicker(config, { log, ...opts.rollouts }) : null;
  let counts: () => Promise<CountsSnapshot> | CountsSnapshot = () => ({});
  let history: ImportHistory | null = null;
  let listener: ListenerSpec | null = null;
  let token: AdminToken | undefined;
  if (port !== null) {
    // Both refuse to start on a bad setting, before anything listens.
    const hosts = hostPolicy(config.admin_address, config.admin_allowed_hosts, config.path);
    token = config.admin_token_file ? readAdminToken(config.admin_token_file) : undefined;
    history = ImportHistory.open(config.state_path);
    const handler = createAdminHandler({
      config,
      history,
      stats: new HistoryStatsCache(history),
      keyrings,
      verification,
      scheduler: () => scheduler?.status() ?? null,
      requestCounts: async () => counts(),
      verifyNow: () => {
        // After an import in progress, so it does not report the import's half-written files.
        void (scheduler?.idle() ?? Promise.resolve()).then(() => verification.run("dashboard"));
      },
      logger: opts.logger,
      accessLog: opts.accessLog,
      hosts,
      token,
      now: opts.rollouts?.now,
    });
    listener = { name: "admin", address: config.admin_address, port, handler };
  }

  let abandoned = false;
  return {
    listener,
    scheduler,
    rollouts,
    get abandoned() {
      return abandoned;
    },
    setRequestCounts(source) {
      counts = source;
    },
    async start(adminUrl) {
      await verification.load();
      if (adminUrl) {
        opts.logger.log({
          level: "info",
          event: "admin-listening",
          listener: "admin",
          url: adminUrl,
          msg: `Admin dashboard, /metrics and /healthz on ${adminUrl}`,
        });
        if (token) {
          opts.logger.log({
            level: "info",
            event: "admin-auth",
            msg: `Admin listener needs the token in ${token.file} (all but /healthz)`,
          });
          if (token.exposed)
            opts.logger.log({
              level: "warn",
              event: "admin-token-exposed",
              msg: `admin_token_file ${token.file} is readable by group or others: chmod 600 it`,
            });
        } else if (!/^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/i.test(config.admin_address)) {
          // Anyone who can reach the port reads the dashboard and /metrics and starts verifications.
          opts.logger.log({
            level: "warn",
            event: "admin-open",
            msg: `Admin listener on ${config.admin_address} has no admin_token_file: anyone who can reach it can use it`,
          });
        }
      }
      await watch.start();
      rollouts?.start();
      if (scheduler) scheduler.start();
      else {
        const why = opts.schedule ? "import_schedule is not set" : "--no-schedule";
        opts.logger.log({ level: "info", event: "scheduler-off", msg: `No scheduled imports (${why})` });
      }
    },
    async stop(waitMs) {
      watch.stop();
      await rollouts?.stop();
      const finished = scheduler ? await scheduler.stop(waitMs) : true;
      abandoned = !finished;
      return finished;
    },
    close() {
      history?.close();
      history = null;
    },
  };
}
