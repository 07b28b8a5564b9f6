/**
 * Import history in SQLite under `state_path/history.sqlite`: one row per import run and one
 * per channel/device in it (version, files, bytes, duration of each step, outcome, error).
 * The dashboard, /metrics and `si history` read it; nothing else needs log files.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";

const Database = createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;

export type RunOutcome = "running" | "ok" | "failed" | "partial";
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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  trigger TEXT NOT NULL,
  dry_run INTEGER NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL,
  error TEXT
);
CREATE TABLE IF NOT EXISTS device_imports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  channel TEXT NOT NULL,
  device TEXT NOT NULL,
  outcome TEXT NOT NULL,
  version INTEGER,
  files INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  steps TEXT NOT NULL DEFAULT '{}',
  error TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS device_imports_run ON device_imports(run_id);
`;

export class ImportHistory {
  private constructor(private readonly db: BetterSqlite3.Database) {}

  static open(statePath: string): ImportHistory {
    mkdirSync(statePath, { recursive: true });
    const db = new Database(join(statePath, "history.sqlite"), { timeout: 5000 });
    db.pragma("journal_mode = WAL");
    db.exec(SCHEMA);
    return new ImportHistory(db);
  }

  startRun(trigger: string, dryRun: boolean, now = new Date()): number {
    const r = this.db
      .prepare("INSERT INTO runs (started_at, trigger, dry_run, outcome) VALUES (?, ?, ?, 'running')")
      .run(now.toISOString(), trigger, dryRun ? 1 : 0);
    return Number(r.lastInsertRowid);
  }

  finishRun(id: number, outcome: RunOutcome, error?: string | null, now = new Date()): void {
    this.db.prepare("UPDATE runs SET finished_at = ?, outcome = ?, error = ? WHERE id = ?").run(now.toISOString(), outcome, error ?? null, id);
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
    const runs = this.db.prepare("SELECT * FROM runs ORDER BY id DESC LIMIT ?").all(limit) as Omit<RunRow, "devices">[];
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
