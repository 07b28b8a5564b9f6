/**
 * The import history file: an existing file from before the owner columns is migrated in
 * place (its rows kept, an older `si` can still write to it), and a run left "running" by a
 * process that is gone — killed, crashed, the machine restarted, a pid now used by another
 * process — is marked "interrupted" when the history is next opened; a live one is not.
 */
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { HistoryStatsCache } from "../../src/dashboard/history-stats.js";
import { acquireGlobalLock } from "../../src/io/lock.js";
import { ImportHistory, SCHEMA_VERSION } from "../../src/state/history.js";
import { currentIdentity, ownerState, procStat } from "../../src/state/process-identity.js";
import { REPO } from "../helpers/instance.js";

const Database = createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;

/** The schema exactly as the first release created it. */
const V0 = `
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
  trigger TEXT NOT NULL, dry_run INTEGER NOT NULL DEFAULT 0, outcome TEXT NOT NULL, error TEXT);
CREATE TABLE device_imports (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES runs(id),
  channel TEXT NOT NULL, device TEXT NOT NULL, outcome TEXT NOT NULL, version INTEGER, files INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0, steps TEXT NOT NULL DEFAULT '{}', error TEXT, started_at TEXT NOT NULL, finished_at TEXT NOT NULL);
CREATE INDEX device_imports_run ON device_imports(run_id);
INSERT INTO runs (started_at, finished_at, trigger, dry_run, outcome, error) VALUES
  ('2026-01-01T00:00:00.000Z', '2026-01-01T00:01:00.000Z', 'cli', 0, 'ok', NULL),
  ('2026-01-02T00:00:00.000Z', NULL, 'schedule', 0, 'running', NULL);
INSERT INTO device_imports (run_id, channel, device, outcome, version, files, bytes, started_at, finished_at) VALUES
  (1, 'devel', 'mako', 'published', 1, 4, 1000, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:50.000Z'),
  (2, 'devel', 'mako', 'unchanged', NULL, 0, 0, '2026-01-02T00:00:00.000Z', '2026-01-02T00:00:07.000Z');
`;

function stateDir(): string {
  return mkdtempSync(join(tmpdir(), "si-history-"));
}

function oldFile(): string {
  const dir = stateDir();
  const db = new Database(join(dir, "history.sqlite"));
  db.exec(V0);
  db.close();
  return dir;
}

function runs(dir: string) {
  const h = ImportHistory.open(dir, { sweep: false });
  try {
    return h.listRuns(100).reverse();
  } finally {
    h.close();
  }
}

/** Inserts a running run with the given owner columns, as another process would have. */
function runningRow(dir: string, owner: { pid: number | null; boot_id?: string | null; start_time?: number | null; pid_ns?: string | null }): number {
  const h = ImportHistory.open(dir, { sweep: false });
  h.close();
  const db = new Database(join(dir, "history.sqlite"));
  try {
    const r = db
      .prepare("INSERT INTO runs (started_at, trigger, dry_run, outcome, pid, boot_id, start_time, pid_ns) VALUES (?, 'cli', 0, 'running', ?, ?, ?, ?)")
      .run(new Date().toISOString(), owner.pid, owner.boot_id ?? null, owner.start_time ?? null, owner.pid_ns ?? null);
    return Number(r.lastInsertRowid);
  } finally {
    db.close();
  }
}

/** A pid that existed a moment ago and does not any more. */
function deadPid(): number {
  const r = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}

describe("import history file", () => {
  it("migrates a file from the first release in place: rows kept, owner columns added, an old writer still works", () => {
    const dir = oldFile();
    const h = ImportHistory.open(dir, { sweep: false });
    h.close();
    const db = new Database(join(dir, "history.sqlite"));
    try {
      expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
      const cols = (db.prepare("PRAGMA table_info(runs)").all() as { name: string }[]).map((c) => c.name);
      expect(cols).toEqual(expect.arrayContaining(["pid", "boot_id", "start_time", "pid_ns"]));
      // What an `si` from before the migration writes: no owner columns.
      db.prepare("INSERT INTO runs (started_at, trigger, dry_run, outcome) VALUES (?, 'cli', 0, 'ok')").run("2026-01-03T00:00:00.000Z");
    } finally {
      db.close();
    }
    const all = runs(dir);
    expect(all.map((r) => [r.id, r.outcome, r.pid])).toEqual([
      [1, "ok", null],
      [2, "running", null],
      [3, "ok", null],
    ]);
    expect(all[0].devices).toMatchObject([{ channel: "devel", device: "mako", outcome: "published", version: 1, bytes: 1000 }]);
    // Opening again is a no-op.
    ImportHistory.open(dir, { sweep: false }).close();
    expect(runs(dir)).toEqual(all);
  });

  it("several commands opening an old file at once migrate it once, and all of them succeed", async () => {
    const dir = oldFile();
    const script = `import { ImportHistory } from ${JSON.stringify(join(REPO, "dist/src/state/history.js"))}; ImportHistory.open(process.argv[1], { sweep: false }).close();`;
    const statuses = await Promise.all(
      Array.from({ length: 4 }, () => {
        const p = spawn(process.execPath, ["--input-type=module", "-e", script, dir], { stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        p.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
        return new Promise<string>((r) => p.on("close", (code) => r(`${code} ${err}`)));
      }),
    );
    expect(statuses).toEqual(["0 ", "0 ", "0 ", "0 "]);
    expect(runs(dir).map((r) => r.id)).toEqual([1, 2]);
  });

  it("a run from before the migration that is still 'running' is interrupted once no import holds the global lock", () => {
    const dir = oldFile();
    const lock = acquireGlobalLock(dir);
    try {
      // An import may be running (an older si holds the lock): left alone.
      ImportHistory.open(dir).close();
      expect(runs(dir)[1]).toMatchObject({ outcome: "running", finished_at: null });
    } finally {
      lock.release();
    }
    ImportHistory.open(dir).close();
    const run = runs(dir)[1];
    expect(run).toMatchObject({ outcome: "interrupted", error: "interrupted: no process id was recorded (a run started by an older version), and no import holds the global lock" });
    // Finished at its last trace: the last device it recorded.
    expect(run.finished_at).toBe("2026-01-02T00:00:07.000Z");
    // The lock was only looked at: an import can take it now.
    acquireGlobalLock(dir).release();
  });

  it("records this process as the owner of a run it starts, and leaves it running while the process lives", () => {
    const dir = stateDir();
    const me = currentIdentity();
    expect(me.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(me.startTime).toBe(procStat(process.pid)!.startTime);
    const h = ImportHistory.open(dir);
    const id = h.startRun("cli", false);
    h.close();
    const db = new Database(join(dir, "history.sqlite"));
    const row = db.prepare("SELECT pid, boot_id, start_time, pid_ns FROM runs WHERE id = ?").get(id);
    db.close();
    expect(row).toEqual({ pid: process.pid, boot_id: me.bootId, start_time: me.startTime, pid_ns: me.pidNs });
    ImportHistory.open(dir).close();
    expect(runs(dir)[0]).toMatchObject({ outcome: "running", pid: process.pid });
  });

  it("marks a run whose process is gone, or whose pid now belongs to another process, as interrupted", () => {
    const dir = stateDir();
    const me = currentIdentity();
    const pid = deadPid();
    const gone = runningRow(dir, { pid, boot_id: me.bootId, start_time: 1, pid_ns: me.pidNs });
    // Our own pid, but another start time: the recorded process died and the pid was reused.
    const reused = runningRow(dir, { pid: process.pid, boot_id: me.bootId, start_time: me.startTime! - 1, pid_ns: me.pidNs });
    const alive = runningRow(dir, { pid: process.pid, boot_id: me.bootId, start_time: me.startTime, pid_ns: me.pidNs });
    // Owners that can be checked need no lock: with it held elsewhere, they are marked anyway.
    const lock = acquireGlobalLock(dir);
    let byId;
    try {
      const h = ImportHistory.open(dir);
      byId = new Map(h.listRuns(10).map((r) => [r.id, r]));
      expect(h.sweepInterrupted()).toBe(0);
      h.close();
    } finally {
      lock.release();
    }
    expect(byId.get(gone)).toMatchObject({
      outcome: "interrupted",
      error: `interrupted: process ${pid} no longer exists; the run never finished (killed, crashed, out of memory)`,
    });
    expect(byId.get(reused)).toMatchObject({
      outcome: "interrupted",
      error: `interrupted: process ${process.pid} no longer exists (the pid now belongs to another process); the run never finished (killed, crashed, out of memory)`,
    });
    expect(byId.get(alive)).toMatchObject({ outcome: "running", finished_at: null });
  });

  it("after a restart of the machine (another boot id): interrupted when the lock is free, left alone while it is held", () => {
    const dir = stateDir();
    const me = currentIdentity();
    const id = runningRow(dir, { pid: process.pid, boot_id: "00000000-0000-4000-8000-000000000000", start_time: me.startTime, pid_ns: me.pidNs });
    expect(ownerState({ pid: process.pid, bootId: "00000000-0000-4000-8000-000000000000" }).state).toBe("unknown");
    const lock = acquireGlobalLock(dir);
    try {
      ImportHistory.open(dir).close();
      expect(runs(dir)[0]).toMatchObject({ id, outcome: "running" });
      // The importer itself opens the history holding the lock: nothing else can be importing.
      ImportHistory.open(dir, { lockHeld: true }).close();
    } finally {
      lock.release();
    }
    expect(runs(dir)[0]).toMatchObject({
      id,
      outcome: "interrupted",
      error: `interrupted: the machine was restarted since process ${process.pid} started the run, and no import holds the global lock`,
    });
  });

  it("the figures of /metrics and the dashboard see a run interrupted meanwhile, without a restart of si serve", () => {
    const dir = stateDir();
    const me = currentIdentity();
    const served = ImportHistory.open(dir);
    try {
      const cache = new HistoryStatsCache(served);
      expect(cache.get().runs).toEqual([]);
      // Another process records a run, then dies (its pid is gone); another one is alive.
      runningRow(dir, { pid: deadPid(), boot_id: me.bootId, start_time: 1, pid_ns: me.pidNs });
      runningRow(dir, { pid: process.pid, boot_id: me.bootId, start_time: me.startTime, pid_ns: me.pidNs });
      expect(cache.get().runs).toEqual(
        expect.arrayContaining([
          { trigger: "cli", outcome: "interrupted", count: 1 },
          { trigger: "cli", outcome: "running", count: 1 },
        ]),
      );
      expect(cache.get().lastRun?.outcome).toBe("running");
      expect(served.listRuns(5).map((r) => r.outcome)).toEqual(["running", "interrupted"]);
      // An interrupted run did not finish: no duration is counted for it.
      expect(cache.get().durationCount).toBe(0);
    } finally {
      served.close();
    }
  });

  it("changeStamp() changes when another connection commits", () => {
    const dir = stateDir();
    const a = ImportHistory.open(dir);
    const b = ImportHistory.open(dir);
    try {
      const before = a.changeStamp();
      expect(a.changeStamp()).toBe(before);
      b.finishRun(b.startRun("cli", false), "ok");
      expect(a.changeStamp()).not.toBe(before);
      const mid = a.changeStamp();
      a.startRun("cli", false);
      expect(a.changeStamp()).not.toBe(mid);
    } finally {
      a.close();
      b.close();
    }
  });
});
