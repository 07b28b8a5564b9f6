/**
 * Live adoption counts of si serve, in the state database (src/state/schema.ts):
 * - `fleet_daily`: downloads started/completed per image. Its `day` column holds the UTC
 *   **hour** (`2026-12-07T02`), so the rollout pause rule can count from a step's start to the
 *   hour (downloadCounts); day figures are sums over `substr(day, 1, 10)`.
 * - `fleet_clients`: one row per UTC day, channel/device and polling-client hash.
 * Each serving process counts in memory (a Map lookup per request) and adds its increments
 * every few seconds and at shutdown (UPSERT adding deltas), so worker processes write side by
 * side (WAL, busy timeout). A busy or broken database delays counts, never serving.
 */
import { CLIENTS_PER_DAY, ClientRows } from "./client-rows.js";
import type BetterSqlite3 from "better-sqlite3";
import { openStateDb } from "../state/db.js";
import { pollOwner, type Attribution, type ImageRef } from "./attribution.js";
import type { AccessRecord } from "./records.js";
import { buildRows, type AdoptionRow } from "./report.js";
import { fleetSalt } from "./salt.js";
import { Tally } from "./tally.js";
import { readAttribution } from "./tree-docs.js";
import { AttributionWatch } from "./watch.js";

export const hourBucket = (ms: number) => new Date(ms).toISOString().slice(0, 13);
export const dayBucket = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const LIVE_BUCKETS = { downloads: hourBucket, clients: dayBucket };

const FLUSH_MS = 5_000;
/** How long a periodic flush waits for the database lock; the counts wait for the next one. */
const FLUSH_BUSY_MS = 250;
/** Polling-client hashes already written, remembered to skip re-inserting them. */
const MAX_WRITTEN = 100_000;
/** Unwritten client hashes kept while the database fails; beyond that they are dropped. */
const MAX_PENDING_CLIENTS = 200_000;

const UPSERT_DOWNLOADS = `INSERT INTO fleet_daily (day, channel, device, version, kind, base, started, completed)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (day, channel, device, version, kind, base)
  DO UPDATE SET started = started + excluded.started, completed = completed + excluded.completed`;

export interface FleetCounterOptions {
  flushMs?: number;
  /** Cap of stored polling clients per channel/device and day (client-rows.ts). */
  clientsPerDay?: number;
  /** Problems (unreadable tree, database errors), each said once per kind. */
  warn?: (msg: string) => void;
}

/** The live counter of one serving process. */
export class FleetCounter {
  private readonly watch: AttributionWatch;
  private tally: Tally | undefined;
  private db: BetterSqlite3.Database | undefined;
  private disabled = false;
  private readonly written = new Set<string>();
  private clientRows: ClientRows | undefined;
  private readonly clientsPerDay: number;
  private readonly timer: NodeJS.Timeout;
  private readonly warned = new Set<string>();
  private readonly warn: (msg: string) => void;

  constructor(
    private readonly statePath: string,
    publishPath: string,
    opts: FleetCounterOptions = {},
  ) {
    this.warn = opts.warn ?? (() => undefined);
    this.clientsPerDay = opts.clientsPerDay ?? CLIENTS_PER_DAY;
    this.watch = new AttributionWatch(publishPath, (m) => this.once("tree", m));
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? FLUSH_MS);
    this.timer.unref();
  }

  /** Whether a response for canonical `path` may count (a marker or an index): then call observe. */
  wants(path: string | undefined): boolean {
    if (path === undefined || this.disabled) return false;
    const attr = this.watch.current;
    return attr.markers.has(path) || pollOwner(attr, path) !== undefined;
  }

  /** One finished response; `path` is the canonical path the file server answered. */
  observe(rec: AccessRecord, path: string): void {
    if (this.disabled) return;
    if (!this.tally) {
      try {
        this.tally = new Tally(fleetSalt(this.statePath), LIVE_BUCKETS);
      } catch (err) {
        this.disabled = true;
        return this.once("salt", `Fleet counting is off: ${(err as Error).message}`);
      }
    }
    this.tally.observe(rec, this.watch.current, path);
  }

  /** Adds the counts so far to the database; `busyMs`: how long to wait for its lock. */
  flush(busyMs = FLUSH_BUSY_MS): void {
    const tally = this.tally;
    if (!tally || tally.empty || this.disabled) return;
    try {
      if (!this.db) {
        this.db = openStateDb(this.statePath);
      }
      this.db.pragma(`busy_timeout = ${busyMs}`);
      const db = this.db;
      const up = db.prepare(UPSERT_DOWNLOADS);
      this.clientRows ??= new ClientRows(db, this.clientsPerDay);
      const rows = this.clientRows;
      const fresh = [...tally.clients].filter(([k]) => !this.written.has(k));
      db.transaction(() => {
        for (const d of tally.downloads.values()) {
          const i = d.image;
          up.run(d.bucket, i.channel, i.device, String(i.version), i.kind, i.base === null ? "" : String(i.base), d.started, d.completed);
        }
        for (const capped of rows.insert(fresh.map(([, c]) => c)))
          this.once(
            `cap ${capped}`,
            `Polling clients of ${capped} reached ${this.clientsPerDay}: further ones are not recorded (the figure is saturated)`,
          );
        rows.prune(dayBucket(Date.now()));
      }).immediate();
      tally.downloads.clear();
      tally.clients.clear();
      if (this.written.size + fresh.length > MAX_WRITTEN) this.written.clear();
      for (const [k] of fresh) this.written.add(k);
    } catch (err) {
      this.once("db", `Cannot add fleet counts to ${this.statePath}/history.sqlite (kept for the next try): ${(err as Error).message}`);
      if (tally.clients.size > MAX_PENDING_CLIENTS) tally.clients.clear();
    }
  }

  /** Final flush (waiting for the lock as long as the database's own timeout) and stop. */
  close(): void {
    clearInterval(this.timer);
    this.watch.close();
    this.flush(5_000);
    this.db?.close();
    this.db = undefined;
  }

  private once(kind: string, msg: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.warn(msg);
  }
}

/** Runs `fn` on the state database, closing it after. */
function withDb<T>(statePath: string, fn: (db: BetterSqlite3.Database) => T): T {
  const db = openStateDb(statePath);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/**
 * Downloads of one target version (full and deltas) since `since`, for the rollout pause rule.
 * Resolution is one hour: the hour holding `since` counts whole.
 */
export function downloadCounts(
  statePath: string,
  q: { channel: string; device: string; version: number; since: Date },
): { started: number; completed: number } {
  return withDb(statePath, (db) => {
    const r = db
      .prepare(
        `SELECT COALESCE(SUM(started), 0) AS started, COALESCE(SUM(completed), 0) AS completed FROM fleet_daily
         WHERE channel = ? AND device = ? AND version = ? AND day >= ?`,
      )
      .get(q.channel, q.device, String(q.version), hourBucket(q.since.getTime())) as { started: number; completed: number };
    return { started: r.started, completed: r.completed };
  });
}

interface DailyRow {
  channel: string;
  device: string;
  version: string;
  kind: string;
  base: string;
  started: number;
  completed: number;
}

const imageOf = (r: DailyRow): ImageRef => ({
  channel: r.channel,
  device: r.device,
  version: Number(r.version),
  kind: r.kind === "delta" ? "delta" : "full",
  base: r.base === "" ? null : Number(r.base),
});

/** Live totals per image (all time) and distinct clients per channel/device (all days). */
export function liveTotals(statePath: string): {
  downloads: { image: ImageRef; started: number; completed: number }[];
  clients: Map<string, number>;
} {
  return withDb(statePath, (db) => {
    const rows = db
      .prepare(
        `SELECT channel, device, version, kind, base, SUM(started) AS started, SUM(completed) AS completed
         FROM fleet_daily GROUP BY channel, device, version, kind, base`,
      )
      .all() as DailyRow[];
    const clients = db.prepare("SELECT channel, device, COUNT(DISTINCT client) AS n FROM fleet_clients GROUP BY channel, device").all() as {
      channel: string;
      device: string;
      n: number;
    }[];
    return {
      downloads: rows.map((r) => ({ image: imageOf(r), started: r.started, completed: r.completed })),
      clients: new Map(clients.map((c) => [`${c.channel}\u0000${c.device}`, c.n])),
    };
  });
}

/** `si fleet report` without logs: the live counts, with the current indexes' images as zero rows. */
export function liveReport(statePath: string, publishPath: string, attr: Attribution = readAttribution(publishPath)): AdoptionRow[] {
  const { downloads, clients } = liveTotals(statePath);
  return buildRows(attr, downloads, clients);
}

/** One day's downloads of one version of a device (full and deltas together). */
export interface AdoptionPoint {
  day: string;
  version: number;
  started: number;
  completed: number;
}

export interface AdoptionSeries {
  channel: string;
  device: string;
  /** By day, then version. */
  points: AdoptionPoint[];
}

/** Daily downloads per target version of one channel/device (the dashboard's adoption chart). */
export function adoptionSeries(statePath: string, channel: string, device: string): AdoptionSeries {
  return withDb(statePath, (db) => {
    const points = db
      .prepare(
        `SELECT substr(day, 1, 10) AS day, CAST(version AS INTEGER) AS version, SUM(started) AS started, SUM(completed) AS completed
         FROM fleet_daily WHERE channel = ? AND device = ? GROUP BY 1, 2 ORDER BY 1, 2`,
      )
      .all(channel, device) as AdoptionPoint[];
    return { channel, device, points };
  });
}

/** The channel/device pairs with any live count. */
export function countedDevices(statePath: string): { channel: string; device: string }[] {
  return withDb(
    statePath,
    (db) =>
      db.prepare("SELECT channel, device FROM fleet_daily UNION SELECT channel, device FROM fleet_clients ORDER BY 1, 2").all() as {
        channel: string;
        device: string;
      }[],
  );
}
