/**
 * Figures derived from the import history (src/state/history.ts) for /metrics and the chart:
 * runs by trigger and outcome, durations, bytes published and the last success per
 * channel/device. The history is the source of truth, so the counts include imports run by
 * hand or by a timer, and survive a restart of the server.
 */
import { compareCodePoints } from "../format/pyjson.js";
import type { DeviceRow, ImportHistory, RunRow } from "../state/history.js";

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

function addDevice(map: Map<string, DeviceStats>, d: DeviceRow): void {
  const key = `${d.channel}\n${d.device}`;
  let s = map.get(key);
  if (!s) map.set(key, (s = { channel: d.channel, device: d.device, outcomes: {}, published: 0, publishedBytes: 0 }));
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

/** `runs` as listRuns returns them (newest first); dry runs are left out. */
export function historyStats(runs: RunRow[], chartPoints = 60): HistoryStats {
  const real = runs.filter((r) => !r.dry_run);
  const byRun = new Map<string, number>();
  const devices = new Map<string, DeviceStats>();
  let durationSum = 0;
  let durationCount = 0;
  for (const r of real) {
    const k = `${r.trigger}\n${r.outcome}`;
    byRun.set(k, (byRun.get(k) ?? 0) + 1);
    if (r.finished_at && r.outcome !== "interrupted") {
      durationSum += Math.max(0, secs(r.finished_at) - secs(r.started_at));
      durationCount++;
    }
    for (const d of r.devices) addDevice(devices, d);
  }
  return {
    runs: [...byRun].map(([k, count]) => {
      const [trigger = "", outcome = ""] = k.split("\n");
      return { trigger, outcome, count };
    }),
    durationSum,
    durationCount,
    lastRun: real[0] ? point(real[0]) : undefined,
    devices: [...devices.values()].sort((a, b) => compareCodePoints(a.channel, b.channel) || compareCodePoints(a.device, b.device)),
    points: real.slice(0, chartPoints).reverse().map(point),
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
