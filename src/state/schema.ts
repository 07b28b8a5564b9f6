/**
 * The tables of the import history (history.ts) and how an existing file is brought up to
 * date: `PRAGMA user_version` counts the migrations a file has had; each runs once, inside
 * one IMMEDIATE transaction, the first time any command of a newer version opens the file.
 */
import type BetterSqlite3 from "better-sqlite3";

/** The tables as the first release made them (schema version 0). */
export const SCHEMA_V0 = `
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

/**
 * Schema changes in order; `PRAGMA user_version` says how many a file has had. Only columns
 * are added, so an older `si` still reads and writes a migrated file (its runs get no pid).
 */
const MIGRATIONS: string[] = [
  // 1: the owner of a run, to tell a run in progress from one whose process died (issue 13).
  `ALTER TABLE runs ADD COLUMN pid INTEGER;
   ALTER TABLE runs ADD COLUMN boot_id TEXT;
   ALTER TABLE runs ADD COLUMN start_time INTEGER;
   ALTER TABLE runs ADD COLUMN pid_ns TEXT;
   CREATE INDEX IF NOT EXISTS runs_running ON runs(id) WHERE outcome = 'running';`,
  // 2: mirror pushes (issue 16), staged rollouts and fleet adoption (issue 17).
  `CREATE TABLE IF NOT EXISTS mirror_pushes (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     mirror TEXT NOT NULL,
     trigger TEXT NOT NULL,
     started_at TEXT NOT NULL,
     finished_at TEXT,
     outcome TEXT NOT NULL,
     files INTEGER NOT NULL DEFAULT 0,
     bytes INTEGER NOT NULL DEFAULT 0,
     phases TEXT NOT NULL DEFAULT '[]',
     channels_sha256 TEXT,
     error TEXT
   );
   CREATE INDEX IF NOT EXISTS mirror_pushes_mirror ON mirror_pushes(mirror, id);
   CREATE TABLE IF NOT EXISTS mirror_files (
     mirror TEXT NOT NULL,
     path TEXT NOT NULL,
     size INTEGER NOT NULL,
     mtime_ms INTEGER NOT NULL,
     sha256 TEXT,
     pushed_at TEXT NOT NULL,
     removable_after TEXT,
     PRIMARY KEY (mirror, path)
   );
   CREATE TABLE IF NOT EXISTS rollouts (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     channel TEXT NOT NULL,
     device TEXT NOT NULL,
     version INTEGER NOT NULL,
     steps TEXT NOT NULL,
     started_at TEXT NOT NULL,
     state TEXT NOT NULL,
     step INTEGER NOT NULL DEFAULT 0,
     step_started_at TEXT NOT NULL,
     paused_hours REAL NOT NULL DEFAULT 0,
     paused_at TEXT,
     reason TEXT,
     floor INTEGER NOT NULL,
     grace_hours REAL NOT NULL,
     min_downloads INTEGER NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX IF NOT EXISTS rollouts_device ON rollouts(channel, device, id);
   CREATE TABLE IF NOT EXISTS fleet_daily (
     day TEXT NOT NULL,
     channel TEXT NOT NULL,
     device TEXT NOT NULL,
     version TEXT NOT NULL,
     kind TEXT NOT NULL,
     base TEXT NOT NULL DEFAULT '',
     started INTEGER NOT NULL DEFAULT 0,
     completed INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (day, channel, device, version, kind, base)
   );
   CREATE TABLE IF NOT EXISTS fleet_clients (
     day TEXT NOT NULL,
     channel TEXT NOT NULL,
     device TEXT NOT NULL,
     client TEXT NOT NULL,
     PRIMARY KEY (day, channel, device, client)
   );`,
];
export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: BetterSqlite3.Database): void {
  if ((db.pragma("user_version", { simple: true }) as number) >= SCHEMA_VERSION) return;
  // IMMEDIATE: two commands opening an old file at once must not both add the columns.
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(SCHEMA_V0);
    const version = db.pragma("user_version", { simple: true }) as number;
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]);
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}
