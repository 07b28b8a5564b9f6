/**
 * Issue 17: `/metrics` passes `promtool check metrics` (no lint problem, exit 0), as the
 * admin listener really serves it (history, keyrings, requests, and the families other
 * modules append: fleet, rollouts) and for the mirror families; and what it exports makes
 * the alert rules fire as they should: a device whose import failed three times in a row
 * raises SiDeviceImportFailing, naming it, and not the run-level alert; a paused rollout
 * raises SiRolloutPaused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { historyStats } from "../../src/dashboard/history-stats.js";
import { renderMetrics } from "../../src/dashboard/metrics.js";
import { prepareOperations, type Operations } from "../../src/dashboard/operations.js";
import { renderMirrorMetrics } from "../../src/mirror/metrics.js";
import type { MirrorSummary, PushRow } from "../../src/mirror/store.js";
import { startListeners, type ListenerGroup } from "../../src/server/listener.js";
import { startServer, type RunningServer } from "../../src/server/start.js";
import { RequestCounts } from "../../src/server/request-counts.js";
import { makeFleetInstance, type FleetFixture } from "../dashboard/fixture.js";
import { parseMetrics } from "../dashboard/metrics-parse.js";
import { alertNames, expectCleanMetrics, promtool, RULES } from "./promtool.js";

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const quiet = { log: () => {} };

describe("the admin listener's /metrics", () => {
  let fx: FleetFixture;
  let server: RunningServer;
  let admin: ListenerGroup;
  let ops: Operations;
  let body: string;

  beforeAll(async () => {
    // devel/bad failed once in the fixture; twice more makes three in a row.
    fx = await makeFleetInstance();
    for (let i = 0; i < 2; i++) {
      const r = await fx.inst.siAsync("import-images");
      expect(r.status, r.stdout + r.stderr).toBe(1);
    }
    const rollout = await fx.inst.siAsync("rollout", "start", "devel", "good", "3", "--steps", "50%@0h, 100%@24h");
    expect(rollout.status, rollout.stdout + rollout.stderr).toBe(0);
    const pause = await fx.inst.siAsync("rollout", "pause", "devel", "good");
    expect(pause.status, pause.stdout + pause.stderr).toBe(0);
    server = await startServer(fx.config, { address: "127.0.0.1", httpPort: 0, httpsPort: null, logger: quiet });
    ops = prepareOperations(fx.config, { logger: quiet, schedule: false, adminPort: 0 });
    admin = await startListeners([ops.listener!], 1000);
    ops.setRequestCounts(() => server.requests.snapshot());
    await ops.start(admin.urls.admin);
    for (const p of ["/channels.json", "/devel/good/index.json", "/gpg/image-signing.tar.xz", "/nope"]) await get(server.httpPort!, p);
    const r = await get(admin.ports.admin, "/metrics");
    expect(r.status).toBe(200);
    body = r.body;
  });
  afterAll(async () => {
    await ops?.stop(1000);
    await Promise.all([server?.close(), admin?.close()]);
    ops?.close();
    await fx?.close();
  });

  it("passes promtool check metrics", () => {
    const names = new Set(parseMetrics(body).map((s) => s.name));
    // Not an empty document: si's own families, the alerts' inputs and the appended ones.
    for (const n of [
      "si_import_runs_total",
      "si_keyring_expiry_timestamp_seconds",
      "si_http_requests_total",
      "si_import_consecutive_failures",
    ])
      expect(names).toContain(n);
    expect(names).toContain("si_rollout_paused");
    expect(names).toContain("si_fleet_downloads_started_total");
    expectCleanMetrics(body);
  });

  it("its samples raise SiDeviceImportFailing for devel/bad and SiRolloutPaused for devel/good, nothing else", () => {
    const samples = parseMetrics(body);
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).map((s) => s.value);
    expect(value("si_import_consecutive_failures")).toEqual([3]);
    expect(value("si_device_consecutive_failed_imports", { channel: "devel", device: "bad" })).toEqual([3]);
    expect(value("si_device_consecutive_failed_imports", { channel: "devel", device: "good" })).toEqual([0]);

    // The scraped samples, as promtool input series (job and instance as Prometheus adds them).
    const input_series = samples
      .filter((s) => Number.isFinite(s.value))
      .map((s) => {
        const labels = { ...s.labels, job: "system-image", instance: "si" };
        const sel = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
        return { series: `${s.name}{${sel.join(",")}}`, values: `${s.value}x5` };
      });
    const alert = (alertname: string, exp_alerts: unknown[] = []) => ({ eval_time: "2m", alertname, exp_alerts });
    const tests = {
      rule_files: [RULES],
      evaluation_interval: "1m",
      tests: [
        {
          interval: "1m",
          input_series,
          alert_rule_test: [
            alert("SiDeviceImportFailing", [
              {
                exp_labels: { severity: "warning", job: "system-image", instance: "si", channel: "devel", device: "bad" },
                exp_annotations: {
                  summary: "si: import of devel/bad failed 3 times in a row",
                  description:
                    "The last 3 imports of channel devel, device bad on si failed; nothing new reaches these devices. `si history` shows the error.",
                },
              },
            ]),
            alert("SiRolloutPaused", [
              {
                exp_labels: { severity: "warning", job: "system-image", instance: "si", channel: "devel", device: "good", version: "3" },
                exp_annotations: {
                  summary: "si: rollout of devel/good version 3 is paused",
                  description:
                    "The staged rollout of version 3 to devel/good on si is paused, by hand or by itself (completed downloads under rollout_floor); `si rollout status devel good` and the dashboard say why. It is not raised until `si rollout resume devel good`.",
                },
              },
            ]),
            // Every other one stays quiet; SiImportFailing too: three failed runs, but the
            // device alert explains them. (promtool's clock starts at 0, so no timestamp is old.)
            ...alertNames()
              .filter((a) => a !== "SiDeviceImportFailing" && a !== "SiRolloutPaused")
              .map((a) => alert(a)),
          ],
        },
      ],
    };
    const dir = mkdtempSync(join(tmpdir(), "si-alerts-scraped-"));
    try {
      // JSON is YAML.
      writeFileSync(join(dir, "tests.yml"), JSON.stringify(tests));
      const r = promtool(["test", "rules", join(dir, "tests.yml")]);
      expect(r.out).toContain("SUCCESS");
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("mirror families appended to /metrics", () => {
  it("pass promtool check metrics", () => {
    const summary = (mirror: string, ok: boolean | null): MirrorSummary => ({
      mirror,
      last: null,
      lastFinished: ok === null ? null : ({ outcome: ok ? "ok" : "failed" } as PushRow),
      lastSuccessMs: ok ? 1_765_000_000_000 : null,
      bytesTotal: ok === null ? 0 : 123_456,
      channels: ok ? { size: 10, mtimeMs: 1_765_000_000_000 } : null,
      pending: { count: 0, nextMs: null },
    });
    const extra = renderMirrorMetrics(
      [summary("eu", true), summary('we"ird\\mirror', false), summary("new", null)],
      { size: 10, mtimeMs: 1_765_000_000_000 },
      1_765_000_600_000,
    );
    expect(extra.join("\n")).toContain('si_mirror_lag_seconds{mirror="eu"} 0');
    const text = renderMetrics({
      stats: historyStats([]),
      keyrings: [],
      requests: new RequestCounts().snapshot(),
      verification: null,
      scheduler: null,
      extra,
    });
    expect(parseMetrics(text).filter((s) => s.name.startsWith("si_mirror_"))).toHaveLength(12);
    expectCleanMetrics(text);
  });
});
