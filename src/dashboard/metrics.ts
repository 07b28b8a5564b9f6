/**
 * `/metrics` in the Prometheus text exposition format (version 0.0.4): import runs and their
 * durations, bytes and images published, the last successful import per channel/device,
 * keyring expiry dates, the public listeners' requests by status and path class, the last
 * tree verification and the scheduler, and what the alert rules (etc/prometheus/si-alerts.yml)
 * need besides: failures in a row and which channels import on a schedule. Pure: the handler
 * gathers the inputs, and `extra` carries the families other modules render (mirrors, fleet,
 * rollouts).
 */
import type { ChannelConfig } from "../config/types.js";
import type { Fleet } from "./fleet.js";
import type { HistoryStats } from "./history-stats.js";
import type { KeyringInfo } from "./keyrings.js";
import { countRows, type CountsSnapshot } from "../server/request-counts.js";
import type { SchedulerStatus } from "../scheduler/scheduler.js";
import type { StoredVerification } from "./verification.js";
import { siVersion } from "../version.js";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface MetricsInput {
  stats: HistoryStats;
  keyrings: KeyringInfo[];
  requests: CountsSnapshot;
  verification: StoredVerification | null;
  scheduler: SchedulerStatus | null;
  /**
   * The channels and import_schedule (a Config fits): which channels import on a schedule
   * (si_channel_schedule_enabled). Absent: that family is left out.
   */
  config?: { import_schedule?: string; channels: ReadonlyMap<string, Pick<ChannelConfig, "type">> };
  /**
   * The published tree (readFleet): si_last_successful_import_timestamp_seconds and
   * si_device_consecutive_failed_imports then leave out devices no longer imported (gone
   * from channels.json, or a per-device redirect), whose history would otherwise keep the
   * import alerts firing forever. Absent, or unreadable (`error`): every device of the history.
   */
  fleet?: Pick<Fleet, "channels" | "error">;
  /** Complete families (HELP, TYPE, samples), one line each, appended verbatim at the end. */
  extra?: string[];
}

type Labels = Record<string, string | number>;

/** Label values: backslash, double quote and newline escaped (exposition format). */
function labels(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

class Writer {
  readonly lines: string[] = [];
  family(name: string, type: "counter" | "gauge", help: string, samples: [Labels, number][]): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of samples) this.lines.push(`${name}${labels(l)} ${Number.isFinite(v) ? String(v) : "NaN"}`);
  }
  raw(...lines: string[]): void {
    this.lines.push(...lines);
  }
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** `channel\ndevice` of the devices import-images imports (not per-device redirects); null: unknown. */
function importedDevices(fleet: MetricsInput["fleet"]): Set<string> | null {
  if (!fleet || fleet.error !== undefined) return null;
  return new Set(fleet.channels.flatMap((c) => c.devices.filter((d) => d.redirect === undefined).map((d) => `${c.name}\n${d.name}`)));
}

export function renderMetrics(m: MetricsInput): string {
  const w = new Writer();
  // Issue 15 item 6: which si answers (Prometheus' *_build_info convention: value 1, facts as labels).
  w.family("si_build_info", "gauge", "Always 1; the labels name the si version and the Node.js runtime serving.", [
    [{ version: siVersion(), nodejs: process.version }, 1],
  ]);
  const { stats } = m;
  w.family(
    "si_import_runs_total",
    "counter",
    "Import runs recorded in the history, by trigger (cli, schedule; rollout: a staged rollout's percentage change) and outcome (ok, partial, failed, interrupted, running).",
    stats.runs.map((r) => [{ trigger: r.trigger, outcome: r.outcome }, r.count]),
  );
  w.raw(
    "# HELP si_import_run_duration_seconds Duration of finished import runs (interrupted ones are left out).",
    "# TYPE si_import_run_duration_seconds summary",
    `si_import_run_duration_seconds_sum ${round3(stats.durationSum)}`,
    `si_import_run_duration_seconds_count ${stats.durationCount}`,
  );
  const last = stats.lastRun;
  w.family(
    "si_last_import_run_timestamp_seconds",
    "gauge",
    "Start of the newest import run (Unix time).",
    last ? [[{}, round3(last.started)]] : [],
  );
  w.family(
    "si_last_import_run_duration_seconds",
    "gauge",
    "Duration of the newest finished import run.",
    last?.duration !== undefined ? [[{}, round3(last.duration)]] : [],
  );
  w.family(
    "si_last_import_run_success",
    "gauge",
    "1 if the newest import run ended ok, 0 if it failed in part or in whole or was interrupted.",
    last && last.outcome !== "running" ? [[{}, last.outcome === "ok" ? 1 : 0]] : [],
  );

  w.family(
    "si_import_consecutive_failures",
    "gauge",
    "Finished import runs in a row, newest first, that did not end ok (failed, partial, interrupted); 0 after an ok run.",
    [[{}, stats.consecutiveFailedRuns]],
  );

  const dev = (d: { channel: string; device: string }) => ({ channel: d.channel, device: d.device });
  const imported = importedDevices(m.fleet);
  const current = imported ? stats.devices.filter((d) => imported.has(`${d.channel}\n${d.device}`)) : stats.devices;
  w.family(
    "si_device_consecutive_failed_imports",
    "gauge",
    "Failed imports of a channel/device in a row, newest first; 0 once one published or found nothing new.",
    current.map((d) => [dev(d), d.consecutiveFailures]),
  );
  w.family(
    "si_device_imports_total",
    "counter",
    "Device imports by outcome (published, unchanged, failed, skipped).",
    stats.devices.flatMap((d) => Object.entries(d.outcomes).map(([outcome, n]): [Labels, number] => [{ ...dev(d), outcome }, n])),
  );
  w.family(
    "si_published_images_total",
    "counter",
    "Images published by import-images per channel/device.",
    stats.devices.map((d) => [dev(d), d.published]),
  );
  w.family(
    "si_published_bytes_total",
    "counter",
    "Bytes of new files published by import-images per channel/device.",
    stats.devices.map((d) => [dev(d), d.publishedBytes]),
  );
  w.family(
    "si_last_successful_import_timestamp_seconds",
    "gauge",
    "Last import of a channel/device that worked (published or nothing new), Unix time.",
    current.filter((d) => d.lastSuccess !== undefined).map((d) => [dev(d), round3(d.lastSuccess!)]),
  );
  w.family(
    "si_last_published_timestamp_seconds",
    "gauge",
    "Last publication of a new image per channel/device, Unix time.",
    stats.devices.filter((d) => d.lastPublished !== undefined).map((d) => [dev(d), round3(d.lastPublished!)]),
  );
  w.family(
    "si_last_published_version",
    "gauge",
    "Version of the last image import-images published per channel/device.",
    stats.devices.filter((d) => d.lastVersion !== undefined).map((d) => [dev(d), d.lastVersion!]),
  );

  w.family(
    "si_keyring_expiry_timestamp_seconds",
    "gauge",
    "keyring.json expiry of each published keyring (Unix time); devices refuse it afterwards.",
    m.keyrings.filter((k) => k.expiry !== undefined).map((k) => [{ keyring: k.path, type: k.type ?? "" }, k.expiry!]),
  );
  w.family(
    "si_keyring_readable",
    "gauge",
    "1 if the published keyring could be read, 0 if it is missing or damaged.",
    m.keyrings.map((k) => [{ keyring: k.path }, k.error ? 0 : 1]),
  );

  w.family(
    "si_http_requests_total",
    "counter",
    "Responses of the public listeners by status and path class (channels, index, keyring, pool, version, signature, other).",
    countRows(m.requests).map((r) => [{ class: r.class, status: r.status }, r.count]),
  );

  const v = m.verification;
  w.family(
    "si_tree_verification_timestamp_seconds",
    "gauge",
    "Start of the last tree verification (Unix time).",
    v ? [[{}, round3(Date.parse(v.started_at) / 1000)]] : [],
  );
  w.family("si_tree_verification_ok", "gauge", "1 if the last tree verification found no error.", v ? [[{}, v.report?.ok ? 1 : 0]] : []);
  w.family(
    "si_tree_verification_problems",
    "gauge",
    "Problems found by the last tree verification, by severity.",
    v?.report
      ? [
          [{ severity: "error" }, v.report.errors],
          [{ severity: "warning" }, v.report.warnings],
        ]
      : [],
  );

  if (m.config) {
    // import-images imports only `type = auto` channels (src/importer/import-images.ts), and
    // only import_schedule makes si serve run it: a manual channel is never stale.
    const scheduled = m.config.import_schedule !== undefined;
    w.family(
      "si_channel_schedule_enabled",
      "gauge",
      "1 if the channel is imported on import_schedule (type = auto and import_schedule set), else 0.",
      [...m.config.channels].map(([name, c]) => [{ channel: name }, scheduled && c.type === "auto" ? 1 : 0]),
    );
  }

  const s = m.scheduler;
  w.family("si_scheduler_enabled", "gauge", "1 if si serve runs import-images on import_schedule.", [[{}, s ? 1 : 0]]);
  if (s) {
    w.family(
      "si_scheduler_next_run_timestamp_seconds",
      "gauge",
      "Next scheduled import (Unix time).",
      s.nextRun ? [[{}, Math.round(s.nextRun.getTime() / 1000)]] : [],
    );
    w.family("si_scheduler_import_running", "gauge", "1 while a scheduled import runs.", [[{}, s.runningSince ? 1 : 0]]);
    w.family("si_scheduler_skipped_total", "counter", "Scheduled ticks skipped (lock busy, previous run still running).", [
      [{}, s.skipped],
    ]);
  }
  if (m.extra) w.raw(...m.extra);
  return w.lines.join("\n") + "\n";
}
