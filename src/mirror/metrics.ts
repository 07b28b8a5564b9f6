/**
 * The mirror families of /metrics (issue 16), for renderMetrics' `extra` lines
 * (src/dashboard/metrics.ts). Pure from the pushes' summaries and the local channels.json;
 * `mirrorMetricLines` is the thin reader over the state database.
 *
 * Lag, defined: how long the mirror may have been serving a channels.json older than the
 * primary's. 0 when the channels.json it last received (its manifest row: size and mtime) is
 * the local one. Otherwise now − the time the channels.json it last received was written: the
 * primary replaced that one at some point since, so this bounds the time the mirror has been
 * behind from above (an alert on it is never late). A mirror that never received one: now −
 * the time the local one was written. No local channels.json: no lag sample.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/types.js";
import { pushMirrorsOf } from "./push.js";
import { MirrorStore, type MirrorSummary } from "./store.js";

export interface LocalChannels {
  size: number;
  mtimeMs: number;
}

/** Seconds behind (above), null without a local channels.json. */
export function lagSeconds(s: Pick<MirrorSummary, "channels">, local: LocalChannels | null, now: number): number | null {
  if (!local) return null;
  if (s.channels && s.channels.size === local.size && s.channels.mtimeMs === local.mtimeMs) return 0;
  const since = s.channels ? s.channels.mtimeMs : local.mtimeMs;
  return Math.max(0, Math.round((now - since) / 1000));
}

const label = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** Complete families (HELP, TYPE, one sample per mirror); nothing without push mirrors. */
export function renderMirrorMetrics(summaries: MirrorSummary[], local: LocalChannels | null, now: number): string[] {
  if (summaries.length === 0) return [];
  const families: [string, string, string, (s: MirrorSummary) => number | null][] = [
    [
      "si_mirror_last_success_timestamp_seconds",
      "gauge",
      "Unix time the last successful push to the mirror ended (0: never).",
      (s) => (s.lastSuccessMs === null ? 0 : Math.floor(s.lastSuccessMs / 1000)),
    ],
    [
      "si_mirror_push_bytes_total",
      "counter",
      "Bytes the pushes to the mirror sent, successful or not, as the engine counts them.",
      (s) => s.bytesTotal,
    ],
    [
      "si_mirror_last_push_success",
      "gauge",
      "1 when the mirror's last finished push succeeded, else 0.",
      (s) => (s.lastFinished?.outcome === "ok" ? 1 : 0),
    ],
    [
      "si_mirror_lag_seconds",
      "gauge",
      "Seconds the mirror may have served an older channels.json than the primary (0: it has the current one).",
      (s) => lagSeconds(s, local, now),
    ],
  ];
  const out: string[] = [];
  for (const [name, type, help, value] of families) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const s of summaries) {
      const v = value(s);
      if (v !== null) out.push(`${name}{mirror="${label(s.mirror)}"} ${v}`);
    }
  }
  return out;
}

export function localChannels(publishPath: string): LocalChannels | null {
  const st = statSync(join(publishPath, "channels.json"), { throwIfNoEntry: false });
  return st ? { size: st.size, mtimeMs: Math.floor(st.mtimeMs) } : null;
}

/** The rsync and rclone mirrors of the config, from the state database. */
export function mirrorMetricLines(statePath: string, config: Pick<Config, "mirrors" | "publish_path">, now = Date.now()): string[] {
  const mirrors = pushMirrorsOf(config);
  if (mirrors.length === 0) return [];
  const store = MirrorStore.open(statePath);
  try {
    return renderMirrorMetrics(
      mirrors.map((m) => store.summary(m.name)),
      localChannels(config.publish_path),
      now,
    );
  } finally {
    store.close();
  }
}
