/**
 * The global lock (server-reference §8.6): `<state_path>/global.lock`, held for the life of an
 * operation. It is an OS record lock (SQLite's fcntl lock on an exclusive transaction), so the
 * kernel releases it when the holder dies, even by SIGKILL: no stale lock files.
 *
 * import-images and cleanup-tree try once and treat "busy" as a clean exit (status 0, like
 * the reference); admin commands wait up to a timeout and then say who they waited for.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";
import { LockBusyError, SiError } from "../errors.js";

const Database = createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;

export const BUSY_MESSAGE = "Something else holds the global lock. exiting.";

/**
 * Open lock connections. A connection the garbage collector finalises is closed, and its
 * kernel lock with it: held locks must stay reachable whether or not the caller keeps the
 * returned object.
 */
const held = new Set<BetterSqlite3.Database>();

export interface GlobalLock {
  release(): void;
}

export function lockPath(statePath: string): string {
  return join(statePath, "global.lock");
}

/**
 * Takes the lock. `waitMs` 0 = do not wait (throws LockBusyError, exit 0); otherwise waits up
 * to waitMs and then throws an error (exit 1) that says the lock stayed busy.
 */
export function acquireGlobalLock(statePath: string, opts: { waitMs?: number; what?: string } = {}): GlobalLock {
  mkdirSync(statePath, { recursive: true });
  const db = new Database(lockPath(statePath), { timeout: opts.waitMs ?? 0 });
  try {
    db.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") {
      if (!opts.waitMs) throw new LockBusyError(BUSY_MESSAGE);
      throw new SiError(
        `Cannot ${opts.what ?? "run"}: the global lock ${lockPath(statePath)} stayed busy for ${Math.round(opts.waitMs / 1000)} s (an import is running; try again later)`,
      );
    }
    throw err;
  }
  held.add(db);
  return {
    release() {
      if (!held.delete(db)) return;
      try {
        db.exec("ROLLBACK");
      } finally {
        db.close();
      }
    },
  };
}

/** Runs `fn` under the lock, releasing it however fn ends. */
export async function withGlobalLock<T>(
  statePath: string,
  opts: { waitMs?: number; what?: string },
  fn: () => Promise<T>,
): Promise<T> {
  const lock = acquireGlobalLock(statePath, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
