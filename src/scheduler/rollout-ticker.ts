/**
 * The rollout ticker of `si serve` (issue 17): one rollout tick (src/rollout/tick.ts) every
 * minute, whether or not import_schedule is set. Ticks never overlap; a tick whose raises
 * find the global lock busy (an import, an admin command) leaves them to the next one.
 * The clock and the timer are injected, so tests drive it without waiting.
 */
import type { Config } from "../config/types.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../io/log.js";
import type { DownloadCounts } from "../rollout/downloads.js";
import { tickRollouts, type TickReport } from "../rollout/tick.js";

export const ROLLOUT_TICK_MS = 60_000;

export interface Timer {
  every(ms: number, fn: () => void): () => void;
}

const realTimer: Timer = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

export interface RolloutTickerOptions {
  log: Logger;
  everyMs?: number;
  now?: () => Date;
  timer?: Timer;
  counts?: DownloadCounts;
  /** The tick itself (tests may replace it); default tickRollouts. */
  tick?: () => Promise<TickReport>;
}

export class RolloutTicker {
  private cancel: (() => void) | null = null;
  private running: Promise<TickReport | null> | null = null;
  private readonly log: Logger;
  last: TickReport | null = null;

  constructor(
    private readonly config: Config,
    private readonly opts: RolloutTickerOptions,
  ) {
    this.log = opts.log.child({ component: "rollouts" });
  }

  start(): void {
    if (this.cancel) return;
    const every = this.opts.everyMs ?? ROLLOUT_TICK_MS;
    this.cancel = (this.opts.timer ?? realTimer).every(every, () => void this.tick());
    this.log.debug(`staged rollouts ticked every ${every / 1000} s`);
  }

  /** One tick now (skipped while one runs); never throws, the log says what failed. */
  tick(): Promise<TickReport | null> {
    if (this.running) return Promise.resolve(null);
    const job =
      this.opts.tick ??
      (() => tickRollouts({ config: this.config, log: this.log, lockWaitMs: 0, now: this.opts.now, counts: this.opts.counts }));
    this.running = job()
      .then((r) => (this.last = r))
      .catch((err: unknown) => {
        this.log.error(`rollout tick failed: ${errorMessage(err)}`);
        return null;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /** Stops ticking and waits for a tick in progress. */
  async stop(): Promise<void> {
    this.cancel?.();
    this.cancel = null;
    await this.running;
  }
}
