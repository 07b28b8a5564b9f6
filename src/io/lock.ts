/**
 * The global lock (server-reference §8.6): `<state_path>/global.lock`, held for the life of an
 * operation. It is an OS record lock (SQLite's fcntl lock on an exclusive transaction), so the
 * kernel releases it when the holder dies, even by SIGKILL: no stale lock files.
 *
 * import-images and cleanup-tree try once and treat "busy" as a clean exit (status 0, like
 * the reference); admin commands wait up to a timeout and then say who they waited for.
 *
 * Who holds it (issue 15 item 4): the holder writes `global.lock.holder` next to the lock
 * (command, pid, start time) once it has the lock, and removes it before letting go, so a
 * busy message can name the holder. The file is only a label: the kernel lock decides. A
 * holder killed by SIGKILL leaves its file behind; its pid is dead, so it is not believed,
 * and the next holder replaces it.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";
import { LockBusyError, SiError } from "../errors.js";

const Database = createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;

/** The busy message when the holder is not known (an older version holds the lock). */
export const BUSY_MESSAGE = "Something else holds the global lock. exiting.";

/**
 * Open lock connections. A connection the garbage collector finalises is closed, and its
 * kernel lock with it: held locks must stay reachable whether or not the caller keeps the
 * returned object.
 */
const held = new Set<BetterSqlite3.Database>();

/** Work queued by afterGlobalLock while this process held the lock. */
let afterRelease: (() => void)[] = [];

export interface GlobalLock {
  release(): void;
}

export interface LockHolder {
  /** What the holder runs (`import-images`, `copy-image devel rc mako`). */
  command: string;
  pid: number;
  /** ISO 8601 UTC, seconds. */
  since: string;
}

export function lockPath(statePath: string): string {
  return join(statePath, "global.lock");
}

export function holderPath(statePath: string): string {
  return join(statePath, "global.lock.holder");
}

/**
 * This process's command for the holder file: the si subcommand and its positional words
 * (`copy-image devel rc mako`), without the global --config and without options.
 */
export function currentCommand(): string {
  const script = process.argv[1];
  if (!script) return basename(process.execPath);
  const words: string[] = [];
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (words.length === 0 && (a === "-c" || a === "--config")) {
      i++;
      continue;
    }
    if (a.startsWith("-")) {
      if (words.length === 0) continue;
      break;
    }
    words.push(a);
  }
  const name = /^si(\.js)?$/.test(basename(script)) ? "" : basename(script);
  return [name, ...words].filter(Boolean).join(" ").slice(0, 120) || basename(script);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Who holds the lock, from its holder file; undefined when unknown (or the pid is dead). */
export function lockHolder(statePath: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(holderPath(statePath), "utf8")) as Partial<LockHolder>;
    if (typeof h.command !== "string" || typeof h.pid !== "number" || typeof h.since !== "string") return undefined;
    return alive(h.pid) ? { command: h.command.replace(/[\r\n]+/g, " "), pid: h.pid, since: h.since } : undefined;
  } catch {
    return undefined;
  }
}

/** `import-images, pid 123, since 2026-12-06T20:00:00Z`, or undefined. */
export function describeHolder(statePath: string): string | undefined {
  const h = lockHolder(statePath);
  return h && `${h.command}, pid ${h.pid}, since ${h.since}`;
}

/** The message of a busy lock for import-images and cleanup-tree (exit 0). */
export function busyMessage(statePath: string): string {
  const who = describeHolder(statePath);
  return who ? `Something else holds the global lock (${who}). exiting.` : BUSY_MESSAGE;
}

function writeHolder(statePath: string, command: string): void {
  const since = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const tmp = `${holderPath(statePath)}.${process.pid}`;
  try {
    writeFileSync(tmp, JSON.stringify({ command, pid: process.pid, since }) + "\n");
    renameSync(tmp, holderPath(statePath));
  } catch {
    // Only a label for messages: a read-only state directory must not stop the operation.
    rmSync(tmp, { force: true });
  }
}

/** True while this process holds the global lock. */
export function holdsGlobalLock(): boolean {
  return held.size > 0;
}

/**
 * Runs `fn` once this process no longer holds the global lock: at once when it holds none,
 * else right after the release (slow side work, like mirror triggers, must not keep other
 * commands waiting). The promise settles when `fn` has run.
 */
export function afterGlobalLock<T>(fn: () => Promise<T>): Promise<T> {
  if (held.size === 0) return fn();
  return new Promise<T>((resolve, reject) => afterRelease.push(() => void fn().then(resolve, reject)));
}

/**
 * Takes the lock. `waitMs` 0 = do not wait (throws LockBusyError, exit 0); otherwise waits up
 * to waitMs and then throws an error (exit 1) that says the lock stayed busy. `holder` names
 * this operation in the holder file (default: this process's command line, see
 * currentCommand).
 */
export function acquireGlobalLock(statePath: string, opts: { waitMs?: number; what?: string; holder?: string } = {}): GlobalLock {
  mkdirSync(statePath, { recursive: true });
  const db = new Database(lockPath(statePath), { timeout: opts.waitMs ?? 0 });
  try {
    db.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") {
      if (!opts.waitMs) throw new LockBusyError(busyMessage(statePath));
      const who = describeHolder(statePath);
      throw new SiError(
        `Cannot ${opts.what ?? "run"}: the global lock ${lockPath(statePath)} stayed busy for ${Math.round(opts.waitMs / 1000)} s (${who ? `held by ${who}` : "an import is running"}; try again later)`,
      );
    }
    throw err;
  }
  held.add(db);
  writeHolder(statePath, opts.holder ?? currentCommand());
  return {
    release() {
      if (!held.delete(db)) return;
      try {
        // Before the lock goes: the next holder's file must not be the one removed.
        try {
          rmSync(holderPath(statePath), { force: true });
        } catch {
          // A label only (see writeHolder); a dead pid in it is not believed anyway.
        }
        db.exec("ROLLBACK");
      } finally {
        db.close();
      }
      if (held.size === 0 && afterRelease.length > 0) {
        const queued = afterRelease;
        afterRelease = [];
        for (const run of queued) run();
      }
    },
  };
}

/** Runs `fn` under the lock, releasing it however fn ends. */
export async function withGlobalLock<T>(
  statePath: string,
  opts: { waitMs?: number; what?: string; holder?: string },
  fn: () => Promise<T>,
): Promise<T> {
  const lock = acquireGlobalLock(statePath, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
