/**
 * Import history in SQLite under `state_path/history.sqlite`: one row per import run and one
 * per channel/device in it (version, files, bytes, duration of each step, outcome, error).
 * The dashboard, /metrics and `si history` read it; nothing else needs log files.
 *
 * Each run records the process that runs it (pid, boot id, start time: process-identity.ts).
 * A run still "running" whose process is gone (SIGKILL, out of memory, power loss) is marked
 * "interrupted" by the next command that opens the history, so the three views agree.
 */
import type BetterSqlite3 from "better-sqlite3";
import { acquireGlobalLock } from "../io/lock.js";
import { openStateDb } from "./db.js";
import { currentIdentity, ownerState, type ProcessIdentity } from "./process-identity.js";

export { SCHEMA_VERSION } from "./schema.js";


/** "interrupted": its process ended without finishing it (found later, see sweepInterrupted). */
export type RunOutcome = "running" | "ok" | "failed" | "partial" | "interrupted";
export type DeviceOutcome = "published" | "unchanged" | "failed" | "skipped";

export interface DeviceRecord {
  channel: string;
  device: string;
  outcome: DeviceOutcome;
  version?: number | null;
  files?: number;
  bytes?: number;
  /** Milliseconds per step, e.g. { "file:rootfs": 1200, delta: 5300, publish: 40 }. */
  steps?: Record<string, number>;
  error?: string | null;
  startedAt: Date;
  finishedAt: Date;
}

export interface RunRow {
  id: number;
  started_at: string;
  finished_at: string | null;
  trigger: string;
  dry_run: number;
  outcome: RunOutcome;
  error: string | null;
  /** The process that ran it; null for runs recorded before version 1 of the schema. */
  pid: number | null;
  devices: DeviceRow[];
}

export interface DeviceRow {
  channel: string;
  device: string;
  outcome: DeviceOutcome;
  version: number | null;
  files: number;
  bytes: number;
  steps: Record<string, number>;
  error: string | null;
  started_at: string;
  finished_at: string;
  duration_ms: number;
}

export interface OpenOptions {
  /** Mark runs whose process is gone as interrupted (default true). */
  sweep?: boolean;
  /** The caller holds the global lock, so no other import can be running. */
  lockHeld?: boolean;
}

export interface SweepOptions {
  /**
   * For runs whose owner cannot be checked from here (another boot, another pid namespace,
   * no pid recorded): take and release the global lock once; free = no import runs, so they
   * are interrupted. Off for frequent callers (/metrics): a probe at the instant an import
   * starts would make that import exit with "lock busy".
   */
  probeLock?: boolean;
  lockHeld?: boolean;
  now?: Date;
}

const RUN_COLUMNS = "id, started_at, finished_at, trigger, dry_run, outcome, error, pid";

interface RunningRow {
  id: number;
  started_at: string;
  pid: number | null;
  boot_id: string | null;
  start_time: number | null;
  pid_ns: string | null;
}

export class ImportHistory {
  private constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly statePath: string,
  ) {}

  static open(statePath: string, opts: OpenOptions = {}): ImportHistory {
    const db = openStateDb(statePath);
    const history = new ImportHistory(db, statePath);
    if (opts.sweep !== false) {
      try {
        history.sweepInterrupted({ probeLock: !opts.lockHeld, lockHeld: opts.lockHeld });
      } catch {
        // Best effort (a read-only copy of the file, say): the next writer marks them.
      }
    }
    return history;
  }

  /** Records a run as started by `owner` (default: this process). */
  startRun(trigger: string, dryRun: boolean, now = new Date(), owner: ProcessIdentity = currentIdentity()): number {
    const r = this.db
      .prepare("INSERT INTO runs (started_at, trigger, dry_run, outcome, pid, boot_id, start_time, pid_ns) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)")
      .run(now.toISOString(), trigger, dryRun ? 1 : 0, owner.pid, owner.bootId, owner.startTime, owner.pidNs);
    return Number(r.lastInsertRowid);
  }

  /**
   * Marks every "running" run whose process no longer exists as "interrupted", with the
   * reason, and finished at its last trace (its last device row, else its start): when it
   * really stopped is unknown, only that it did. Returns how many were marked.
   */
  sweepInterrupted(opts: SweepOptions = {}): number {
    const rows = this.db.prepare("SELECT id, started_at, pid, boot_id, start_time, pid_ns FROM runs WHERE outcome = 'running'").all() as RunningRow[];
    if (rows.length === 0) return 0;
    const me = currentIdentity();
    let lockFree: boolean | undefined;
    const noImportRuns = () => (lockFree ??= opts.lockHeld === true || (opts.probeLock === true && globalLockFree(this.statePath)));
    const lastTrace = this.db.prepare("SELECT MAX(finished_at) FROM device_imports WHERE run_id = ?").pluck();
    const mark = this.db.prepare("UPDATE runs SET outcome = 'interrupted', finished_at = ?, error = ? WHERE id = ? AND outcome = 'running'");
    let marked = 0;
    for (const r of rows) {
      const owner = ownerState({ pid: r.pid, bootId: r.boot_id, startTime: r.start_time, pidNs: r.pid_ns }, me);
      let why: string;
      if (owner.state === "gone") why = `${owner.why}; the run never finished (killed, crashed, out of memory)`;
      else if (owner.state === "unknown" && noImportRuns()) why = `${owner.why}, and no import holds the global lock`;
      else continue;
      const last = (lastTrace.get(r.id) as string | null) ?? r.started_at;
      marked += mark.run(last > r.started_at ? last : r.started_at, `interrupted: ${why}`, r.id).changes;
    }
    return marked;
  }

  /** Runs recorded by process `pid` that started at or after `since` (the scheduler's child). */
  runsOf(pid: number, since: Date): { id: number; outcome: RunOutcome }[] {
    return this.db
      .prepare("SELECT id, outcome FROM runs WHERE pid = ? AND started_at >= ? ORDER BY id")
      .all(pid, since.toISOString()) as { id: number; outcome: RunOutcome }[];
  }

  /** Changes whenever any connection (any process) commits a change to the file. */
  changeStamp(): string {
    const other = this.db.pragma("data_version", { simple: true }) as number;
    const own = this.db.prepare("SELECT total_changes()").pluck().get() as number;
    return `${other}:${own}`;
  }

  finishRun(id: number, outcome: RunOutcome, error?: string | null, now = new Date()): void {
    this.db.prepare("UPDATE runs SET finished_at = ?, outcome = ?, error = ? WHERE id = ?").run(now.toISOString(), outcome, error ?? null, id);
  }

  /** Marks run `id` as interrupted if it is still running (a finished run keeps its outcome). */
  interruptRun(id: number, reason: string, now = new Date()): boolean {
    return this.db.prepare("UPDATE runs SET finished_at = ?, outcome = 'interrupted', error = ? WHERE id = ? AND outcome = 'running'").run(now.toISOString(), reason, id).changes > 0;
  }

  recordDevice(runId: number, rec: DeviceRecord): void {
    this.db
      .prepare(
        `INSERT INTO device_imports (run_id, channel, device, outcome, version, files, bytes, steps, error, started_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        runId,
        rec.channel,
        rec.device,
        rec.outcome,
        rec.version ?? null,
        rec.files ?? 0,
        rec.bytes ?? 0,
        JSON.stringify(rec.steps ?? {}),
        rec.error ?? null,
        rec.startedAt.toISOString(),
        rec.finishedAt.toISOString(),
      );
  }

  /** The newest `limit` runs, newest first, each with its device rows. */
  listRuns(limit = 20): RunRow[] {
    const runs = this.db.prepare(`SELECT ${RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?`).all(limit) as Omit<RunRow, "devices">[];
    const byRun = this.db.prepare("SELECT * FROM device_imports WHERE run_id = ? ORDER BY id");
    return runs.map((r) => ({
      ...r,
      devices: (byRun.all(r.id) as (Omit<DeviceRow, "steps" | "duration_ms"> & { steps: string })[]).map((d) => ({
        channel: d.channel,
        device: d.device,
        outcome: d.outcome,
        version: d.version,
        files: d.files,
        bytes: d.bytes,
        steps: JSON.parse(d.steps) as Record<string, number>,
        error: d.error,
        started_at: d.started_at,
        finished_at: d.finished_at,
        duration_ms: Date.parse(d.finished_at) - Date.parse(d.started_at),
      })),
    }));
  }

  /** Last successful publish per channel/device (for /metrics and the dashboard). */
  lastPublished(): { channel: string; device: string; version: number; finished_at: string }[] {
    return this.db
      .prepare(
        `SELECT channel, device, version, MAX(finished_at) AS finished_at FROM device_imports
         WHERE outcome = 'published' GROUP BY channel, device ORDER BY channel, device`,
      )
      .all() as { channel: string; device: string; version: number; finished_at: string }[];
  }

  close(): void {
    this.db.close();
  }
}

/** True when the global lock could be taken (and was released at once): no import runs. */
function globalLockFree(statePath: string): boolean {
  try {
    acquireGlobalLock(statePath).release();
    return true;
  } catch {
    return false;
  }
}
