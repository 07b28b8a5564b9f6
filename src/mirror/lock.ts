/**
 * One push per mirror at a time: two pushes interleaving their phases could leave the mirror
 * with the older channels.json while the manifest says the newer. Same mechanism as the
 * global lock (src/io/lock.ts): an exclusive SQLite transaction on `<state_path>/mirror-<name>.lock`,
 * released by the kernel when the holder dies. Waiting polls without blocking the event loop,
 * so the other mirrors' pushes go on meanwhile.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import type BetterSqlite3 from "better-sqlite3";

export interface MirrorLock {
  release(): void;
}

export function mirrorLockPath(statePath: string, mirror: string): string {
  return join(statePath, `mirror-${encodeURIComponent(mirror)}.lock`);
}

function tryLock(path: string): BetterSqlite3.Database | null {
  const db = new Database(path, { timeout: 0 });
  try {
    db.exec("BEGIN EXCLUSIVE");
    return db;
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") return null;
    throw err;
  }
}

/** The mirror's lock, waiting up to waitMs (0: one try); null when it stayed busy. */
export async function acquireMirrorLock(
  statePath: string,
  mirror: string,
  waitMs: number,
  signal?: AbortSignal,
): Promise<MirrorLock | null> {
  mkdirSync(statePath, { recursive: true });
  const path = mirrorLockPath(statePath, mirror);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const db = tryLock(path);
    if (db) {
      return {
        release() {
          if (!db.open) return;
          db.exec("ROLLBACK");
          db.close();
        },
      };
    }
    if (Date.now() >= deadline || signal?.aborted) return null;
    await sleep(100);
  }
}

/** True while some process pushes to the mirror (status: a "running" row whose lock is free was interrupted). */
export async function mirrorBusy(statePath: string, mirror: string): Promise<boolean> {
  const lock = await acquireMirrorLock(statePath, mirror, 0);
  lock?.release();
  return lock === null;
}
