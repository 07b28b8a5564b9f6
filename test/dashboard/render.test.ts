/**
 * The pure parts of the admin side: HTML escaping of every value the page shows, the SVG
 * chart, the Prometheus text format, history figures and request classification.
 */
import { describe, expect, it } from "vitest";
import { renderChart } from "../../src/dashboard/chart.js";
import { renderDashboard, type DashboardData } from "../../src/dashboard/dashboard.js";
import { historyStats } from "../../src/dashboard/history-stats.js";
import { escapeHtml, html } from "../../src/dashboard/html.js";
import { renderMetrics } from "../../src/dashboard/metrics.js";
import { RequestCounts, addCounts, classifyPath } from "../../src/server/request-counts.js";
import type { RunRow } from "../../src/state/history.js";
import { parseMetrics } from "./metrics-parse.js";

const EVIL = `<script>alert("x")</script>&'`;

function run(id: number, started: string, secs: number, outcome: RunRow["outcome"], devices: Partial<RunRow["devices"][number]>[]): RunRow {
  const finished = new Date(Date.parse(started) + secs * 1000).toISOString();
  return {
    id,
    pid: null,
    started_at: started,
    finished_at: outcome === "running" ? null : finished,
    trigger: "schedule",
    dry_run: 0,
    outcome,
    error: outcome === "failed" ? EVIL : null,
    devices: devices.map((d) => ({
      channel: "devel",
      device: "mako",
      outcome: "published",
      version: 1,
      files: 3,
      bytes: 0,
      steps: {},
      error: null,
      started_at: started,
      finished_at: finished,
      duration_ms: secs * 1000,
      ...d,
    })),
  };
}

function hostileData(): DashboardData {
  const runs = [
    run(2, "2026-03-02T10:00:00.000Z", 30, "failed", [{ outcome: "failed", error: EVIL, device: EVIL }]),
    run(1, "2026-03-01T10:00:00.000Z", 60, "ok", [{ bytes: 5_000_000, version: 7 }]),
  ];
  return {
    now: new Date("2026-03-02T12:00:00Z"),
    title: EVIL,
    publishPath: EVIL,
    fleet: {
      channels: [
        {
          name: EVIL,
          alias: EVIL,
          hidden: true,
          devices: [
            {
              name: EVIL,
              redirect: EVIL,
              images: [{ version: 7, type: "full", description: EVIL, tag: EVIL, phased: 10, files: 3, bytes: 10, deltas: [6] }],
            },
            { name: "broken", images: [], error: EVIL },
          ],
        },
      ],
    },
    keyrings: [
      { path: EVIL, type: EVIL, expiry: Date.parse("2026-03-20T00:00:00Z") / 1000, usedBy: [EVIL] },
      { path: "gpg/x.tar.xz", usedBy: [], error: EVIL },
    ],
    runs,
    stats: historyStats(runs),
    verification: {
      last: {
        trigger: "dashboard",
        started_at: "2026-03-02T11:00:00.000Z",
        duration_ms: 1200,
        report: {
          root: EVIL,
          ok: false,
          errors: 1,
          warnings: 0,
          problems: [{ severity: "error", file: EVIL, message: EVIL }],
          checked: { signatures: 1, files: 1, indexes: 1, keyrings: 1 },
          at: "",
          skipped: [EVIL],
        },
      },
      running: null,
    },
    scheduler: { expression: EVIL, nextRun: new Date("2026-03-02T13:00:00Z"), runningSince: null, last: null, skipped: 0 },
  };
}

describe("dashboard HTML", () => {
  it("escapes every string it shows: names, descriptions, errors, paths, tags, the schedule", () => {
    const page = renderDashboard(hostileData());
    expect(page).not.toContain("<script");
    expect(page).not.toContain(`alert("x")`);
    const escaped = escapeHtml(EVIL);
    expect(escaped).toBe("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;");
    // Each hostile value is shown, escaped (title, path, channel, device, tag, keyring, error...).
    expect(page.split(escaped).length - 1).toBeGreaterThanOrEqual(15);
  });

  it("warns about a keyring that expires within 30 days and shows a broken one", () => {
    const page = renderDashboard(hostileData());
    expect(page).toMatch(/badge warn">17 days left</);
    expect(page).toContain('Keyrings</div><div class="value"><span class="badge warn">2 need attention</span>');
  });

  it("reloads itself every 5 s only while a verification or an import runs", () => {
    const data = hostileData();
    expect(renderDashboard(data)).not.toContain('http-equiv="refresh"');
    data.verification.running = { since: new Date(), trigger: "dashboard" };
    expect(renderDashboard(data)).toContain('<meta http-equiv="refresh" content="5">');
    data.verification.running = null;
    data.scheduler!.runningSince = new Date();
    expect(renderDashboard(data)).toContain('<meta http-equiv="refresh" content="5">');
  });

  it("the html tag escapes interpolations, joins arrays and keeps nested html as markup", () => {
    const inner = html`<b>${"<i>"}</b>`;
    expect(html`<p>${[inner, "&", 3, null, undefined, false]}</p>`.value).toBe("<p><b>&lt;i&gt;</b>&amp;3</p>");
  });
});

describe("chart", () => {
  it("one bar per run, a duration line, failed runs marked, tooltips escaped", () => {
    const runs = [
      run(3, "2026-03-03T10:00:00.000Z", 10, "failed", [{ outcome: "failed", error: "x" }]),
      run(2, "2026-03-02T10:00:00.000Z", 120, "ok", [{ bytes: 2_000_000 }]),
      run(1, "2026-03-01T10:00:00.000Z", 60, "ok", [{ bytes: 5_000_000 }]),
    ];
    const svg = renderChart(historyStats(runs).points).value;
    expect(svg.match(/class="bar"/g)).toHaveLength(3);
    expect(svg.match(/<circle /g)).toHaveLength(3);
    expect(svg).toContain("<polyline");
    expect(svg.match(/class="failed"/g)).toHaveLength(1);
    // Left axis up to 5 MB, right axis up to 2 min; oldest run first.
    expect(svg).toContain(">5.0 MB<");
    expect(svg).toContain(">2 min<");
    expect(svg).toContain(">1 min<");
    expect(svg.indexOf("Run #1 ")).toBeLessThan(svg.indexOf("Run #3 "));
    expect(renderChart([]).value).toContain("No import runs yet.");
  });
});

describe("metrics text", () => {
  it("is valid exposition format with escaped label values", () => {
    const counts = new RequestCounts();
    counts.record("/channels.json", 200);
    counts.record("/channels.json", 304);
    counts.record(undefined, 400);
    const stats = historyStats([run(1, "2026-03-01T10:00:00.000Z", 60, "ok", [{ bytes: 42, channel: 'we"ird\\ch\nan' }])]);
    const text = renderMetrics({ stats, keyrings: [], requests: counts.snapshot(), verification: null, scheduler: null });
    const samples = parseMetrics(text);
    const bytes = samples.find((s) => s.name === "si_published_bytes_total")!;
    expect(bytes.labels.channel).toBe('we"ird\\ch\nan');
    expect(bytes.value).toBe(42);
    expect(text).toContain('si_http_requests_total{class="channels",status="304"} 1');
    expect(text).toContain('si_http_requests_total{class="other",status="400"} 1');
    expect(text).toContain("si_import_run_duration_seconds_sum 60\nsi_import_run_duration_seconds_count 1\n");
    expect(text.endsWith("\n")).toBe(true);
  });
});

describe("history figures", () => {
  it("counts runs by trigger and outcome, sums published bytes, finds the last success per device", () => {
    const runs = [
      run(3, "2026-03-03T10:00:00.000Z", 10, "failed", [{ outcome: "failed", error: "boom" }]),
      run(2, "2026-03-02T10:00:00.000Z", 20, "ok", [{ outcome: "unchanged" }]),
      run(1, "2026-03-01T10:00:00.000Z", 30, "ok", [{ bytes: 100, version: 4 }]),
    ];
    const s = historyStats(runs);
    expect(s.runs).toEqual(
      expect.arrayContaining([
        { trigger: "schedule", outcome: "ok", count: 2 },
        { trigger: "schedule", outcome: "failed", count: 1 },
      ]),
    );
    expect(s.durationSum).toBe(60);
    expect(s.devices).toHaveLength(1);
    expect(s.devices[0]).toMatchObject({
      published: 1,
      publishedBytes: 100,
      lastVersion: 4,
      outcomes: { published: 1, unchanged: 1, failed: 1 },
      lastSuccess: Date.parse("2026-03-02T10:00:20.000Z") / 1000,
      lastPublished: Date.parse("2026-03-01T10:00:30.000Z") / 1000,
      last: { outcome: "failed", error: "boom" },
    });
    expect(s.points.map((p) => p.id)).toEqual([1, 2, 3]);
  });
});

describe("request classes", () => {
  it.each([
    ["/channels.json", "channels"],
    ["/channels.json.asc", "signature"],
    ["/devel/mako/index.json", "index"],
    ["/devel/mako/index.json.asc", "signature"],
    ["/gpg/image-signing.tar.xz", "keyring"],
    ["/pool/ubports-0123.tar.xz", "pool"],
    ["/pool/ubports-0123.tar.xz.asc", "signature"],
    ["/devel/mako/version-12.tar.xz", "version"],
    ["/devel/mako/device-signing.tar.xz", "keyring"],
    ["/devel/mako/notes.txt", "other"],
    ["/", "other"],
    [undefined, "other"],
  ])("%s is %s", (path, cls) => {
    expect(classifyPath(path)).toBe(cls);
  });

  it("snapshots of several workers add up", () => {
    expect(addCounts({ "pool 200": 2, "index 404": 1 }, { "pool 200": 3 }, {})).toEqual({ "pool 200": 5, "index 404": 1 });
  });
});
