/**
 * The shell's operation queue: the Tree's one-at-a-time queue (src/tree/queue.ts), plus the
 * global lock. The lock is taken when an operation is about to run and none is held, and
 * released as soon as no operation is queued: a burst of calls (a script, or
 * `for (...) pub.publish_keyring(k)`) runs under one lock, and an idle interactive shell
 * never blocks imports. Waiting for the lock does not block the event loop.
 */
import type { GlobalLock } from "../io/lock.js";
import { OpQueue } from "../tree/index.js";
import { acquireLock } from "../admin/lock.js";

export class LockingQueue extends OpQueue {
  private active = 0;
  private lock?: GlobalLock;
  /** The lock error of the current burst: the operations queued behind it fail the same way at once. */
  private failure?: Error;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly statePath: string,
    private readonly waitMs: number,
    private readonly onWait?: (message: string) => void,
  ) {
    super();
  }

  override run<T>(fn: () => Promise<T>): Promise<T> {
    this.active++;
    return super.run(async () => {
      try {
        if (!this.lock) {
          if (this.failure) throw this.failure;
          try {
            this.lock = await acquireLock(this.statePath, {
              waitMs: this.waitMs,
              what: "run the shell's tree operations",
              onWait: this.onWait,
            });
          } catch (err) {
            this.failure = err instanceof Error ? err : new Error(String(err));
            throw this.failure;
          }
        }
        return await fn();
      } finally {
        if (--this.active === 0) this.settle();
      }
    });
  }

  /**
   * Queues `fn` in turn with the tree operations, without the lock: for admin commands,
   * which take the global lock themselves (holding it here would make them wait for us).
   */
  runUnlocked<T>(fn: () => Promise<T>): Promise<T> {
    this.active++;
    return super.run(async () => {
      try {
        this.lock?.release();
        this.lock = undefined;
        return await fn();
      } finally {
        if (--this.active === 0) this.settle();
      }
    });
  }

  private settle(): void {
    this.lock?.release();
    this.lock = undefined;
    this.failure = undefined;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Operations queued or running. */
  get pending(): number {
    return this.active;
  }

  /** Resolves when no operation is queued or running. */
  idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }

  /** Releases the lock if an operation was interrupted while holding it. */
  close(): void {
    this.lock?.release();
    this.lock = undefined;
  }
}
