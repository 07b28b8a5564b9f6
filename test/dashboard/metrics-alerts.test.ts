/**
 * What /metrics gives the alert rules (etc/prometheus/si-alerts.yml) besides the history's
 * totals: failed runs and device imports in a row, which channels import on a schedule, and
 * the families other modules append (`extra`).
 */
import { describe, expect, it } from "vitest";
import { historyStats } from "../../src/dashboard/history-stats.js";
import { renderMetrics, type MetricsInput } from "../../src/dashboard/metrics.js";
import { RequestCounts } from "../../src/server/request-counts.js";
import type { DeviceRow, RunRow } from "../../src/state/history.js";
import { parseMetrics } from "./metrics-parse.js";

let nextId = 1;
/** A run `minutes` after 2026-03-01T00:00Z; `devices` as [device, outcome] of channel devel. */
function run(minutes: number, outcome: RunRow["outcome"], devices: [string, DeviceRow["outcome"]][] = [], dry = false): RunRow {
  const at = new Date(Date.parse("2026-03-01T00:00:00Z") + minutes * 60_000).toISOString();
  return {
    id: nextId++,
    pid: null,
    started_at: at,
    finished_at: outcome === "running" ? null : at,
    trigger: "schedule",
    dry_run: dry ? 1 : 0,
    outcome,
    error: null,
    devices: devices.map(([device, o]) => ({
      channel: "devel",
      device,
      outcome: o,
      version: o === "published" ? 1 : null,
      files: 0,
      bytes: 0,
      steps: {},
      error: o === "failed" ? "HTTP 404" : null,
      started_at: at,
      finished_at: at,
      duration_ms: 0,
    })),
  };
}

/** listRuns order: newest first. */
const newestFirst = (...runs: RunRow[]) => runs.reverse();

function metrics(input: Partial<MetricsInput>) {
  const text = renderMetrics({
    stats: historyStats([]),
    keyrings: [],
    requests: new RequestCounts().snapshot(),
    verification: null,
    scheduler: null,
    ...input,
  });
  const samples = parseMetrics(text);
  const value = (name: string, labels: Record<string, string> = {}) => {
    const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    return hits.length === 1 ? hits[0].value : hits.length === 0 ? undefined : NaN;
  };
  return { text, samples, value };
}

describe("failures in a row", () => {
  it("counts runs that did not end ok back to the last ok one; a running or dry run neither counts nor ends the streak", () => {
    const runs = newestFirst(
      run(0, "failed"),
      run(1, "ok"),
      run(2, "failed"),
      run(3, "partial"),
      run(4, "ok", [], true),
      run(5, "interrupted"),
      run(6, "running"),
    );
    expect(historyStats(runs).consecutiveFailedRuns).toBe(3);
    expect(metrics({ stats: historyStats(runs) }).value("si_import_consecutive_failures")).toBe(3);
    // Two failures, then ok: none.
    expect(historyStats(newestFirst(run(0, "failed"), run(1, "failed"), run(2, "ok"))).consecutiveFailedRuns).toBe(0);
    // Never an ok run: all of them; no run: 0 (the family is there, so the rule has a series).
    expect(historyStats(newestFirst(run(0, "failed"), run(1, "partial"))).consecutiveFailedRuns).toBe(2);
    expect(metrics({}).value("si_import_consecutive_failures")).toBe(0);
  });

  it("per channel/device: failed imports back to the last published or unchanged one; skipped ones pass", () => {
    const runs = newestFirst(
      run(0, "ok", [
        ["good", "published"],
        ["bad", "published"],
        ["flaky", "published"],
      ]),
      run(1, "failed", [
        ["good", "unchanged"],
        ["bad", "failed"],
        ["flaky", "failed"],
      ]),
      run(2, "failed", [
        ["good", "unchanged"],
        ["bad", "skipped"],
        ["flaky", "failed"],
      ]),
      run(3, "failed", [
        ["good", "unchanged"],
        ["bad", "failed"],
        ["flaky", "unchanged"],
      ]),
      run(4, "failed", [
        ["good", "unchanged"],
        ["bad", "failed"],
        ["flaky", "failed"],
      ]),
    );
    const { value } = metrics({ stats: historyStats(runs) });
    const streak = (device: string) => value("si_device_consecutive_failed_imports", { channel: "devel", device });
    expect(streak("good")).toBe(0);
    expect(streak("bad")).toBe(3);
    expect(streak("flaky")).toBe(1);
  });

  it("within one run, the device's last row decides", () => {
    const r = run(0, "ok", [
      ["twice", "failed"],
      ["twice", "published"],
    ]);
    expect(historyStats([r]).devices[0].consecutiveFailures).toBe(0);
    r.devices.reverse();
    expect(historyStats([r]).devices[0].consecutiveFailures).toBe(1);
  });
});

describe("staged rollout runs (trigger rollout) in the history", () => {
  it("count by trigger only: they end no failure streak and are no import, success or publication", () => {
    const raise = (minutes: number) => ({ ...run(minutes, "ok", [["bad", "published"]]), trigger: "rollout" });
    const runs = newestFirst(
      run(0, "ok", [["bad", "published"]]),
      run(10, "failed", [["bad", "failed"]]),
      raise(20),
      run(30, "failed", [["bad", "failed"]]),
      raise(40),
    );
    const stats = historyStats(runs);
    expect(stats.consecutiveFailedRuns).toBe(2);
    expect(stats.devices).toHaveLength(1);
    expect(stats.devices[0]).toMatchObject({
      consecutiveFailures: 2,
      published: 1,
      outcomes: { published: 1, failed: 2 },
      lastSuccess: Date.parse("2026-03-01T00:00:00Z") / 1000,
    });
    expect(stats.lastRun?.outcome).toBe("failed");
    expect(stats.points).toHaveLength(3);
    expect(stats.runs).toContainEqual({ trigger: "rollout", outcome: "ok", count: 2 });
    const { value } = metrics({ stats });
    expect(value("si_import_runs_total", { trigger: "rollout", outcome: "ok" })).toBe(2);
    expect(value("si_last_import_run_success")).toBe(0);
  });
});

describe("devices no longer imported", () => {
  const runs = newestFirst(
    run(0, "ok", [
      ["good", "published"],
      ["gone", "published"],
      ["moved", "published"],
    ]),
    run(1, "failed", [
      ["good", "unchanged"],
      ["gone", "failed"],
      ["moved", "failed"],
    ]),
  );
  const stats = historyStats(runs);
  const devices = (input: Partial<MetricsInput>, name: string) =>
    metrics({ stats, ...input })
      .samples.filter((s) => s.name === name)
      .map((s) => s.labels.device)
      .sort();
  const fleet = {
    channels: [
      {
        name: "devel",
        hidden: false,
        devices: [
          { name: "good", images: [] },
          { name: "moved", redirect: "other", images: [] },
        ],
      },
    ],
  };

  it("drop out of the gauges the import alerts read once the tree is given", () => {
    for (const name of ["si_device_consecutive_failed_imports", "si_last_successful_import_timestamp_seconds"]) {
      expect(devices({}, name)).toEqual(["gone", "good", "moved"]);
      expect(devices({ fleet }, name)).toEqual(["good"]);
      // An unreadable tree says nothing about which devices are gone.
      expect(devices({ fleet: { channels: [], error: "bad channels.json" } }, name)).toEqual(["gone", "good", "moved"]);
    }
    // The counters keep them.
    expect(devices({ fleet }, "si_published_images_total")).toEqual(["gone", "good", "moved"]);
  });
});

describe("si_channel_schedule_enabled", () => {
  const channels = new Map<string, { type: "auto" | "manual" }>([
    ["devel", { type: "auto" }],
    ["stable", { type: "manual" }],
  ]);

  it("is 1 for auto channels when import_schedule is set, 0 for manual ones", () => {
    const { value } = metrics({ config: { import_schedule: "0 3 * * *", channels } });
    expect(value("si_channel_schedule_enabled", { channel: "devel" })).toBe(1);
    expect(value("si_channel_schedule_enabled", { channel: "stable" })).toBe(0);
  });

  it("is 0 everywhere without import_schedule, and left out without the config", () => {
    const { value } = metrics({ config: { channels } });
    expect(value("si_channel_schedule_enabled", { channel: "devel" })).toBe(0);
    expect(value("si_channel_schedule_enabled", { channel: "stable" })).toBe(0);
    expect(metrics({}).text).not.toContain("si_channel_schedule_enabled");
  });
});

describe("extra families", () => {
  it("are appended verbatim after si's own, ending with a newline", () => {
    const extra = ["# HELP si_test_thing A thing.", "# TYPE si_test_thing gauge", 'si_test_thing{mirror="eu"} 7'];
    const { text, value } = metrics({ extra });
    expect(text.endsWith(`\n${extra.join("\n")}\n`)).toBe(true);
    expect(value("si_test_thing", { mirror: "eu" })).toBe(7);
    expect(metrics({ extra: [] }).text).toBe(metrics({}).text);
  });
});
