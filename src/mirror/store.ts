/**
 * Mirror pushes in the state database (src/state/schema.ts, schema 2): `mirror_pushes`, one
 * row per push (the push history `si mirror status` and /metrics read), and `mirror_files`,
 * per mirror the manifest of its last successful push — what the next push compares the
 * local listing against (plan.ts) — plus `removable_after` on files gone locally.
 */
import type BetterSqlite3 from "better-sqlite3";
import { openStateDb } from "../state/db.js";
import type { LocalFile, ManifestEntry, PhaseName } from "./plan.js";

export type PushOutcome = "running" | "ok" | "failed" | "timeout" | "interrupted";
/** Who started a push: `si mirror push`, the scheduler, import-images, an admin command. */
export type PushTrigger = "cli" | "schedule" | "import" | "admin";

/** One phase (or the removal pass) of a push, as recorded in `phases`. */
export interface PhaseRecord {
  phase: PhaseName | "removals";
  files: number;
  bytes: number;
  duration_ms: number;
}

export interface PushRow {
  id: number;
  mirror: string;
  trigger: string;
  started_at: string;
  finished_at: string | null;
  outcome: PushOutcome;
  files: number;
  bytes: number;
  phases: PhaseRecord[];
  channels_sha256: string | null;
  error: string | null;
}

/** What status and metrics need of one mirror. */
export interface MirrorSummary {
  mirror: string;
  last: PushRow | null;
  /** The last push that ended (not running). */
  lastFinished: PushRow | null;
  /** finished_at of the last push that succeeded, ms; null: never. */
  lastSuccessMs: number | null;
  /** Bytes sent by all pushes, successful or not. */
  bytesTotal: number;
  /** The channels.json the mirror last received (its manifest row). */
  channels: { size: number; mtimeMs: number } | null;
  pending: { count: number; nextMs: number | null };
}

type RawPush = Omit<PushRow, "phases"> & { phases: string };

export class MirrorStore {
  private constructor(private readonly db: BetterSqlite3.Database) {}

  static open(statePath: string): MirrorStore {
    return new MirrorStore(openStateDb(statePath));
  }

  close(): void {
    this.db.close();
  }

  manifest(mirror: string): ManifestEntry[] {
    const rows = this.db.prepare("SELECT path, size, mtime_ms, removable_after FROM mirror_files WHERE mirror = ?").all(mirror) as {
      path: string;
      size: number;
      mtime_ms: number;
      removable_after: string | null;
    }[];
    return rows.map((r) => ({
      path: r.path,
      size: r.size,
      mtimeMs: r.mtime_ms,
      removableAfter: r.removable_after === null ? null : Date.parse(r.removable_after),
    }));
  }

  /** A new push; rows of this mirror still "running" belong to dead processes (the caller holds the mirror's lock). */
  startPush(mirror: string, trigger: PushTrigger, startedAt: Date): number {
    return this.db.transaction(() => {
      this.db
        .prepare(
          "UPDATE mirror_pushes SET outcome = 'interrupted', error = 'the pushing process ended before the push did' WHERE mirror = ? AND outcome = 'running'",
        )
        .run(mirror);
      return this.insertPush(mirror, trigger, startedAt);
    })();
  }

  /** A push row, "running" until finishPush (without the sweep: for a push that never got the lock). */
  insertPush(mirror: string, trigger: PushTrigger, startedAt: Date): number {
    const r = this.db
      .prepare("INSERT INTO mirror_pushes (mirror, trigger, started_at, outcome) VALUES (?, ?, ?, 'running')")
      .run(mirror, trigger, startedAt.toISOString());
    return Number(r.lastInsertRowid);
  }

  /** Counters so far (bytes count for /metrics even if the push then fails). */
  progress(id: number, files: number, bytes: number, phases: PhaseRecord[]): void {
    this.db.prepare("UPDATE mirror_pushes SET files = ?, bytes = ?, phases = ? WHERE id = ?").run(files, bytes, JSON.stringify(phases), id);
  }

  finishPush(id: number, end: { outcome: PushOutcome; finishedAt: Date; channelsSha256: string | null; error?: string }): void {
    this.db
      .prepare("UPDATE mirror_pushes SET outcome = ?, finished_at = ?, channels_sha256 = ?, error = ? WHERE id = ?")
      .run(end.outcome, end.finishedAt.toISOString(), end.channelsSha256, end.error ?? null, id);
  }

  /**
   * After the last phase succeeded: the sent files as pushed, the files gone since marked
   * removable after `removableAfter`, files that came back unmarked. One transaction.
   */
  commitManifest(
    mirror: string,
    c: { sent: LocalFile[]; newlyGone: string[]; returned: string[]; removableAfter: Date; pushedAt: Date },
  ): void {
    const upsert = this.db.prepare(
      `INSERT INTO mirror_files (mirror, path, size, mtime_ms, pushed_at, removable_after) VALUES (?, ?, ?, ?, ?, NULL)
       ON CONFLICT (mirror, path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, pushed_at = excluded.pushed_at, removable_after = NULL`,
    );
    const mark = this.db.prepare("UPDATE mirror_files SET removable_after = ? WHERE mirror = ? AND path = ?");
    this.db.transaction(() => {
      for (const f of c.sent) upsert.run(mirror, f.path, f.size, f.mtimeMs, c.pushedAt.toISOString());
      for (const p of c.newlyGone) mark.run(c.removableAfter.toISOString(), mirror, p);
      for (const p of c.returned) mark.run(null, mirror, p);
    })();
  }

  /** How many of the mirror's files may be removed at `now` (ms). */
  dueRemovals(mirror: string, now: number): number {
    const r = this.db
      .prepare("SELECT COUNT(*) AS n FROM mirror_files WHERE mirror = ? AND removable_after IS NOT NULL AND removable_after <= ?")
      .get(mirror, new Date(now).toISOString()) as { n: number };
    return r.n;
  }

  /** Removed from the mirror: out of its manifest. */
  dropFiles(mirror: string, paths: string[]): void {
    const del = this.db.prepare("DELETE FROM mirror_files WHERE mirror = ? AND path = ?");
    this.db.transaction(() => {
      for (const p of paths) del.run(mirror, p);
    })();
  }

  /** Pushes of a mirror, newest first. */
  pushes(mirror: string, limit = 20): PushRow[] {
    const rows = this.db.prepare("SELECT * FROM mirror_pushes WHERE mirror = ? ORDER BY id DESC LIMIT ?").all(mirror, limit) as RawPush[];
    return rows.map((r) => ({ ...r, phases: JSON.parse(r.phases) as PhaseRecord[] }));
  }

  summary(mirror: string): MirrorSummary {
    const last = this.pushes(mirror, 1)[0] ?? null;
    const finished = this.db
      .prepare("SELECT * FROM mirror_pushes WHERE mirror = ? AND outcome != 'running' ORDER BY id DESC LIMIT 1")
      .get(mirror) as RawPush | undefined;
    const agg = this.db
      .prepare(
        "SELECT MAX(CASE WHEN outcome = 'ok' THEN finished_at END) AS ok, COALESCE(SUM(bytes), 0) AS bytes FROM mirror_pushes WHERE mirror = ?",
      )
      .get(mirror) as { ok: string | null; bytes: number };
    const ch = this.db.prepare("SELECT size, mtime_ms FROM mirror_files WHERE mirror = ? AND path = 'channels.json'").get(mirror) as
      { size: number; mtime_ms: number } | undefined;
    const pending = this.db
      .prepare("SELECT COUNT(*) AS n, MIN(removable_after) AS next FROM mirror_files WHERE mirror = ? AND removable_after IS NOT NULL")
      .get(mirror) as { n: number; next: string | null };
    return {
      mirror,
      last,
      lastFinished: finished ? { ...finished, phases: JSON.parse(finished.phases) as PhaseRecord[] } : null,
      lastSuccessMs: agg.ok === null ? null : Date.parse(agg.ok),
      bytesTotal: agg.bytes,
      channels: ch ? { size: ch.size, mtimeMs: ch.mtime_ms } : null,
      pending: { count: pending.n, nextMs: pending.next === null ? null : Date.parse(pending.next) },
    };
  }
}
