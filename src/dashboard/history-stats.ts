/**
 * Figures derived from the import history (src/state/history.ts) for /metrics and the chart:
 * runs by trigger and outcome, durations, bytes published and the last success per
 * channel/device. The history is the source of truth, so the counts include imports run by
 * hand or by a timer, and survive a restart of the server.
 */
import { compareCodePoints } from "../format/pyjson.js";
import type { DeviceRow, ImportHistory, RunRow } from "../state/history.js";
import { TRIGGER as ROLLOUT_TRIGGER } from "../rollout/record.js";

export interface DeviceStats {
  channel: string;
  device: string;
  /** Device imports by outcome (published, unchanged, failed, skipped). */
  outcomes: Record<string, number>;
  published: number;
  publishedBytes: number;
  /** Unix seconds of the last import that worked (published or nothing new). */
  lastSuccess?: number;
  /** Unix seconds and version of the last publication. */
  lastPublished?: number;
  lastVersion?: number;
  /** The newest import of this device: outcome, Unix seconds, error. */
  last?: { outcome: string; at: number; error: string | null };
  /**
   * Failed imports of this device in a row, newest first, back to the last one that worked
   * (published or unchanged); skipped ones neither count nor break the streak. Alert rule
   * SiDeviceImportFailing (etc/prometheus/si-alerts.yml).
   */
  consecutiveFailures: number;
}

export interface RunPoint {
  id: number;
  /** Unix seconds. */
  started: number;
  /** Seconds; undefined while running. */
  duration?: number;
  outcome: string;
  publishedBytes: number;
  published: number;
}

export interface HistoryStats {
  runs: { trigger: string; outcome: string; count: number }[];
  /**
   * Finished runs: total seconds and count (a Prometheus summary without quantiles). An
   * interrupted run did not finish: when it stopped is not known, so it is not counted.
   */
  durationSum: number;
  durationCount: number;
  lastRun?: RunPoint;
  /**
   * Finished runs in a row, newest first, that did not end ok (failed, partial or
   * interrupted), back to the last ok run; a run still running is passed over. Alert rule
   * SiImportFailing.
   */
  consecutiveFailedRuns: number;
  devices: DeviceStats[];
  /** Oldest first. */
  points: RunPoint[];
}

const secs = (iso: string) => Date.parse(iso) / 1000;

function point(r: RunRow): RunPoint {
  const published = r.devices.filter((d) => d.outcome === "published");
  return {
    id: r.id,
    started: secs(r.started_at),
    duration: r.finished_at ? Math.max(0, secs(r.finished_at) - secs(r.started_at)) : undefined,
    outcome: r.outcome,
    publishedBytes: published.reduce((n, d) => n + d.bytes, 0),
    published: published.length,
  };
}

/** Devices whose streak of failures has ended (a success seen, going back in time). */
type StreakEnded = Set<DeviceStats>;

/** `d` comes in the order listRuns gives: newest run first. */
function addDevice(map: Map<string, DeviceStats>, ended: StreakEnded, d: DeviceRow): void {
  const key = `${d.channel}\n${d.device}`;
  let s = map.get(key);
  if (!s)
    map.set(key, (s = { channel: d.channel, device: d.device, outcomes: {}, published: 0, publishedBytes: 0, consecutiveFailures: 0 }));
  if (!ended.has(s)) {
    if (d.outcome === "failed") s.consecutiveFailures++;
    else if (d.outcome !== "skipped") ended.add(s);
  }
  s.outcomes[d.outcome] = (s.outcomes[d.outcome] ?? 0) + 1;
  const at = secs(d.finished_at);
  if (!s.last || at >= s.last.at) s.last = { outcome: d.outcome, at, error: d.error };
  if (d.outcome === "published" || d.outcome === "unchanged") s.lastSuccess = Math.max(s.lastSuccess ?? 0, at);
  if (d.outcome === "published") {
    s.published++;
    s.publishedBytes += d.bytes;
    if (at >= (s.lastPublished ?? 0)) {
      s.lastPublished = at;
      s.lastVersion = d.version ?? undefined;
    }
  }
}

/**
 * `runs` as listRuns returns them (newest first); dry runs are left out. Runs of a staged
 * rollout (trigger `rollout`: one phased-percentage change each, src/rollout/record.ts) count
 * in `runs` by their trigger and nowhere else: they import nothing, so they neither end a
 * streak of failed imports nor count as a device's successful import or publication.
 */
export function historyStats(runs: RunRow[], chartPoints = 60): HistoryStats {
  const real = runs.filter((r) => !r.dry_run);
  const imports = real.filter((r) => r.trigger !== ROLLOUT_TRIGGER);
  const byRun = new Map<string, number>();
  const devices = new Map<string, DeviceStats>();
  const ended: StreakEnded = new Set();
  let failedRuns = 0;
  let runStreakEnded = false;
  let durationSum = 0;
  let durationCount = 0;
  for (const r of real) {
    const k = `${r.trigger}\n${r.outcome}`;
    byRun.set(k, (byRun.get(k) ?? 0) + 1);
  }
  for (const r of imports) {
    if (r.finished_at && r.outcome !== "interrupted") {
      durationSum += Math.max(0, secs(r.finished_at) - secs(r.started_at));
      durationCount++;
    }
    if (!runStreakEnded && r.outcome !== "running") {
      if (r.outcome === "ok") runStreakEnded = true;
      else failedRuns++;
    }
    // Within a run too the newest device row first (listRuns gives them in insertion order).
    for (const d of [...r.devices].reverse()) addDevice(devices, ended, d);
  }
  return {
    runs: [...byRun].map(([k, count]) => {
      const [trigger = "", outcome = ""] = k.split("\n");
      return { trigger, outcome, count };
    }),
    durationSum,
    durationCount,
    lastRun: imports[0] ? point(imports[0]) : undefined,
    consecutiveFailedRuns: failedRuns,
    devices: [...devices.values()].sort((a, b) => compareCodePoints(a.channel, b.channel) || compareCodePoints(a.device, b.device)),
    points: imports.slice(0, chartPoints).reverse().map(point),
  };
}

/**
 * Stats of the whole history, recomputed only when the file changed (any process's commit: a
 * new run, a finished or interrupted one, another device row): a scrape every few seconds
 * costs two pragmas. Each call first marks runs whose process is gone as interrupted, so
 * /metrics, the dashboard and `si history` agree without waiting for a restart.
 */
export class HistoryStatsCache {
  private key: string | null = null;
  private stats: HistoryStats = historyStats([]);

  constructor(private readonly history: ImportHistory) {}

  get(): HistoryStats {
    this.history.sweepInterrupted();
    const key = this.history.changeStamp();
    if (key !== this.key) {
      this.stats = historyStats(this.history.listRuns(Number.MAX_SAFE_INTEGER));
      this.key = key;
    }
    return this.stats;
  }
}
