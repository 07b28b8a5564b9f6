/**
 * The built-in scheduler of `si serve` (`[global] import_schedule`): runs import-images on a
 * cron expression in UTC (node-cron; 5 fields, or 6 with seconds first).
 *
 * Runs never overlap: not in this process (a tick while a run is in progress is skipped and
 * logged), and not with any other process, because each run takes the same global lock as
 * `si import-images` without waiting (server-reference §8.6): if something else holds it,
 * the tick logs "lock busy, skipped" and records nothing. Every run that starts is recorded
 * in the import history by the importer itself, with trigger "schedule".
 *
 * Each run is a child process (child-runner.ts, import-child.ts), never this one: a run that
 * dies (uncaught error, out of memory, SIGKILL) is recorded as failed with the reason, the
 * server goes on serving, and the next tick runs as usual. The lock is the child's, so it is
 * released by the kernel whatever way the child ends.
 */
import { createTask, validateDetailed, type ScheduledTask } from "node-cron";
import type { Config } from "../config/types.js";
import { ConfigError, LockBusyError, errorMessage } from "../errors.js";
import type { Logger } from "../io/log.js";
import type { ImportResult } from "../importer/import-images.js";
import { ImportChildError, runImportInChild } from "./child-runner.js";
import { markInterrupted } from "./interrupted.js";

const INTERRUPTED_BY_STOP = "interrupted: si serve stopped during the import";
/** How long stop() waits for a killed import child to go. */
const REAP_MS = 5_000;

export type TickOutcome = "ok" | "partial" | "failed" | "error" | "skipped";

export interface TickResult {
  at: Date;
  outcome: TickOutcome;
  /** Why it was skipped, or what failed. */
  message?: string;
  published?: number;
  failed?: number;
  duration_ms?: number;
}

export interface SchedulerStatus {
  expression: string;
  nextRun: Date | null;
  /** Start of the run in progress. */
  runningSince: Date | null;
  last: TickResult | null;
  skipped: number;
}

export interface SchedulerOptions {
  log: Logger;
  /**
   * The job (tests inject one); default: import-images with trigger "schedule" in a child
   * process. `signal` is aborted when the server stops and will not wait any longer.
   */
  runImport?: (log: Logger, signal: AbortSignal) => Promise<ImportResult>;
  /** The child entry and its Node options (tests running from src/ point at dist/). */
  child?: { entry?: string; execArgv?: string[] };
  /** Called after every run that took the lock (not after a skipped tick). */
  afterRun?: (result: TickResult) => Promise<unknown>;
}

/** Checks `import_schedule` before anything starts; the error names the file and the key. */
export function validateSchedule(config: Config, expression: string): void {
  const v = validateDetailed(expression);
  if (!v.valid) {
    const why = v.errors.map((e) => `${e.field}${e.value !== undefined ? ` '${e.value}'` : ""}: ${e.message}`).join("; ");
    throw new ConfigError(
      `Invalid import_schedule '${expression}' in ${config.path}: ${why || "not a cron expression"} (5 fields: minute hour day month weekday, UTC)`,
    );
  }
}

export class ImportScheduler {
  private readonly task: ScheduledTask;
  private readonly log: Logger;
  private running: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private runningSince: Date | null = null;
  private last: TickResult | null = null;
  private skipped = 0;
  private stopped = false;

  constructor(
    private readonly config: Config,
    readonly expression: string,
    private readonly opts: SchedulerOptions,
  ) {
    validateSchedule(config, expression);
    this.log = opts.log.child({ component: "scheduler" });
    // node-cron's own messages (missed ticks, say) join our log; its overlap warning would
    // repeat the line skip() writes.
    const cronLog = (level: "info" | "warn" | "error" | "debug") => (m: string | Error) => {
      const text = errorMessage(m);
      if (!/overlap prevention/.test(text)) this.log[level](`node-cron: ${text}`);
    };
    this.task = createTask(expression, () => this.tick(), {
      name: "import-images",
      timezone: "UTC",
      noOverlap: true,
      logger: { info: cronLog("debug"), warn: cronLog("warn"), error: cronLog("error"), debug: cronLog("debug") },
    });
    // node-cron's own guard fires first when a tick comes during a run; say so either way.
    this.task.on("execution:overlap", () => {
      this.skip("the previous scheduled import is still running");
    });
  }

  /** Starts ticking; logs the schedule and the next run. */
  start(): void {
    void this.task.start();
    this.log.info(`import-images scheduled at '${this.expression}' (UTC)`, {
      schedule: this.expression,
      next_run: this.nextRun()?.toISOString() ?? null,
    });
  }

  nextRun(): Date | null {
    return this.stopped ? null : this.task.getNextRun();
  }

  status(): SchedulerStatus {
    return {
      expression: this.expression,
      nextRun: this.nextRun(),
      runningSince: this.runningSince,
      last: this.last,
      skipped: this.skipped,
    };
  }

  /** Resolves when no run is in progress. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private skip(message: string): TickResult {
    this.skipped++;
    this.log.info(`${message}, skipped`, { trigger: "schedule" });
    const r: TickResult = { at: new Date(), outcome: "skipped", message };
    this.last = r;
    return r;
  }

  /** One scheduled run (node-cron calls it; tests may too). */
  async tick(): Promise<TickResult> {
    if (this.stopped) return { at: new Date(), outcome: "skipped", message: "scheduler stopped" };
    if (this.running) return this.skip("the previous scheduled import is still running");
    let result!: TickResult;
    this.running = this.execute().then((r) => {
      result = r;
    });
    try {
      await this.running;
    } finally {
      this.running = null;
      this.runningSince = null;
    }
    return result;
  }

  private async execute(): Promise<TickResult> {
    const at = new Date();
    this.runningSince = at;
    const t0 = performance.now();
    const log = this.log.child({ trigger: "schedule" });
    log.info("scheduled import-images started");
    const abort = (this.abort = new AbortController());
    const job =
      this.opts.runImport ??
      ((l, signal) =>
        runImportInChild(this.config, {
          log: l,
          signal,
          stopping: () => (this.stopped ? INTERRUPTED_BY_STOP : undefined),
          ...this.opts.child,
        }));
    let r: TickResult;
    try {
      const res = await job(log, abort.signal);
      const outcome = res.failed === 0 ? "ok" : res.published > 0 ? "partial" : "failed";
      r = { at, outcome, published: res.published, failed: res.failed, duration_ms: Math.round(performance.now() - t0) };
      const line = `scheduled import-images finished: ${outcome}, ${res.published} published, ${res.failed} failed`;
      (outcome === "ok" ? log.info : log.error)(line, {
        run: res.runId ?? null,
        published: res.published,
        failed: res.failed,
        duration_ms: r.duration_ms,
      });
    } catch (err) {
      if (err instanceof LockBusyError) return this.skip("lock busy");
      const message = errorMessage(err);
      r = { at, outcome: "error", message, duration_ms: Math.round(performance.now() - t0) };
      // Stopping: stop() records and logs what happened to the run; nothing more is started.
      if (abort.signal.aborted) return (this.last = r);
      // The importer recorded the run before it failed; make sure it does not stay "running"
      // (the child runner has already closed the run of a child that died).
      if (!(err instanceof ImportChildError)) markInterrupted(this.config.state_path, at, `import-images failed: ${message}`);
      log.error(`scheduled import-images failed: ${message}`, { duration_ms: r.duration_ms });
    } finally {
      this.abort = null;
    }
    this.last = r;
    // After every run that took the lock, failed or not: a keyring renewal must not depend
    // on imports working (an import that always crashes must not let the keyring expire).
    if (this.opts.afterRun && !this.stopped) {
      try {
        await this.opts.afterRun(r);
      } catch (err) {
        log.error(`after the scheduled import: ${errorMessage(err)}`);
      }
    }
    return r;
  }

  /**
   * Stops ticking and waits up to `waitMs` for a run in progress. Resolves true when none is
   * left; false when one was abandoned: its child process is killed (the kernel frees the
   * lock; commits are atomic, so nothing is half-published), the run is marked as
   * interrupted in the history, and the caller should exit.
   */
  async stop(waitMs: number): Promise<boolean> {
    this.stopped = true;
    await this.task.destroy();
    if (!this.running) return true;
    const since = this.runningSince;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.idle().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
    ]);
    clearTimeout(timer);
    if (!finished && since) {
      this.abort?.abort(new Error(INTERRUPTED_BY_STOP));
      // Wait (a little) for the killed child to be reaped and its run recorded.
      await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, REAP_MS)))]);
      clearTimeout(timer);
      markInterrupted(this.config.state_path, since, INTERRUPTED_BY_STOP);
      this.log.warn("scheduled import-images interrupted by the server stopping", { trigger: "schedule" });
    }
    return finished;
  }
}
