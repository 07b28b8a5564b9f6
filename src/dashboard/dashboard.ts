/**
 * The dashboard page, rendered on the server from plain data (no script, no build step):
 * a summary, the channels and devices with their images, the keyrings with days until they
 * expire, the import history with failures and their errors, the last tree verification,
 * and a chart of bytes published and import durations. Every value goes through `html`.
 */
import type { RunRow } from "../state/history.js";
import { renderChart, formatBytes, formatDuration } from "./chart.js";
import type { ChannelView, DeviceView, Fleet } from "./fleet.js";
import type { HistoryStats } from "./history-stats.js";
import { html, raw, type SafeHtml } from "./html.js";
import { EXPIRY_WARN_DAYS, daysLeft, type KeyringInfo } from "./keyrings.js";
import type { SchedulerStatus } from "../scheduler/scheduler.js";
import { DASHBOARD_CSS } from "./style.js";
import type { RolloutSummary } from "../rollout/describe.js";
import { renderRollout } from "./rollouts.js";
import { TRIGGER as ROLLOUT_TRIGGER } from "../rollout/record.js";
import type { StoredVerification } from "./verification.js";

export interface DashboardData {
  now: Date;
  title: string;
  publishPath: string;
  fleet: Fleet;
  keyrings: KeyringInfo[];
  /** Recent runs, newest first. */
  runs: RunRow[];
  stats: HistoryStats;
  verification: { last: StoredVerification | null; running: { since: Date; trigger: string } | null };
  scheduler: SchedulerStatus | null;
  /** Images shown per device before "N older". */
  imagesPerDevice?: number;
  /** Keyrings expiring within this many days get a warning (keyring_warn_days). */
  warnDays?: number;
  /** The listener needs a token: the footer offers to log out. */
  loggedIn?: boolean;
  /** The newest staged rollout of each channel/device (issue 17). */
  rollouts?: RolloutSummary[];
  /** The adoption section (src/dashboard/adoption.ts), after the channels. */
  adoption?: SafeHtml;
}

const OUTCOME_BADGE: Record<string, string> = {
  ok: "ok",
  published: "ok",
  unchanged: "",
  running: "info",
  partial: "warn",
  skipped: "warn",
  failed: "bad",
  error: "bad",
  interrupted: "bad",
};
const badge = (text: string, kind = OUTCOME_BADGE[text] ?? "") => html`<span class="badge ${kind}">${text}</span>`;

/** `2026-03-01 14:05` (UTC, as the header says) in a <time> element with the exact instant. */
function when(iso: string | Date | undefined | null): SafeHtml {
  if (!iso) return html`<span class="muted">–</span>`;
  const d = typeof iso === "string" ? new Date(iso) : iso;
  if (Number.isNaN(d.getTime())) return html`${String(iso)}`;
  return html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace("T", " ")}</time>`;
}

function ago(d: Date | number | undefined, now: Date): string {
  if (d === undefined) return "never";
  const s = Math.round((now.getTime() - (typeof d === "number" ? d * 1000 : d.getTime())) / 1000);
  if (s < 0) return `in ${formatDuration(-s)}`;
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function deviceBlock(ch: ChannelView, d: DeviceView, data: DashboardData): SafeHtml {
  const stats = data.stats.devices.find((s) => s.channel === ch.name && s.device === d.name);
  const limit = data.imagesPerDevice ?? 6;
  const shown = d.images.slice(0, limit);
  const last = stats?.last;
  const lastText: Record<string, string> = { published: "published", unchanged: "nothing new", failed: "failed", skipped: "skipped" };
  const head = html`<h4>${d.name} ${d.redirect ? html`<span class="badge info">redirect → ${d.redirect}</span>` : ""}${
    last
      ? html`<span class="muted"> · last import ${ago(last.at, data.now)}: </span>${badge(lastText[last.outcome] ?? last.outcome, OUTCOME_BADGE[last.outcome])}`
      : ""
  }</h4>${last?.outcome === "failed" && last.error ? html`<p class="error">${last.error}</p>` : ""}`;
  if (d.error) return html`<div class="device">${head}<p class="error">${d.error}</p></div>`;
  if (d.images.length === 0) return html`<div class="device">${head}<p class="muted">No images yet.</p></div>`;
  const rows = shown.map(
    (img, i) => html`<tr class="${i === 0 ? "latest" : ""}"><td class="num"><strong>${img.version}</strong></td>
<td>${img.tag ? badge(img.tag, "info") : html`<span class="muted">–</span>`}</td>
<td class="num">${img.phased === undefined ? "100 %" : html`<span class="badge warn">${img.phased} %</span>`}</td>
<td class="num">${formatBytes(img.bytes)}</td>
<td class="hide-sm">${img.deltas.length ? `from ${img.deltas.join(", ")}` : html`<span class="muted">–</span>`}</td>
<td class="hide-sm">${img.description}</td></tr>`,
  );
  const more = d.images.length > limit ? html`<p class="muted">${d.images.length - limit} older image(s) not shown.</p>` : "";
  const rollout = data.rollouts?.find((r) => r.channel === ch.name && r.device === d.name && r.state !== "superseded");
  return html`<div class="device">${head}<div class="scroll"><table>
<thead><tr><th class="num">Version</th><th>Tag</th><th class="num">Phased</th><th class="num">Size</th><th class="hide-sm">Deltas</th><th class="hide-sm">Description</th></tr></thead>
<tbody>${rows}</tbody></table></div>${more}${rollout ? renderRollout(rollout) : ""}</div>`;
}

function channelsSection(data: DashboardData): SafeHtml {
  const { fleet } = data;
  const body = fleet.error
    ? html`<p class="error">Cannot read the published tree: ${fleet.error}</p>`
    : fleet.channels.length === 0
      ? html`<p class="muted">No channels yet (create one with <code>si channel create NAME</code>).</p>`
      : fleet.channels.map(
          (ch) =>
            html`<h3>${ch.name} ${ch.hidden ? badge("hidden", "") : ""}${ch.alias ? html`<span class="badge info">alias of ${ch.alias}</span>` : ""}${
              ch.redirect ? html`<span class="badge info">redirect → ${ch.redirect}</span>` : ""
            }</h3>${ch.devices.length ? ch.devices.map((d) => deviceBlock(ch, d, data)) : html`<p class="muted">No devices.</p>`}`,
        );
  return html`<section id="channels"><h2>Channels and devices</h2>${body}</section>`;
}

function keyringsSection(data: DashboardData): SafeHtml {
  if (data.keyrings.length === 0)
    return html`<section id="keyrings"><h2>Keyrings</h2><p class="muted">No keyrings published.</p></section>`;
  const rows = data.keyrings.map((k) => {
    let status: SafeHtml;
    if (k.error) status = html`<span class="error">${k.error}</span>`;
    else if (k.expiry === undefined) status = badge("no expiry", "");
    else {
      const days = daysLeft(k.expiry, data.now);
      status =
        days < 0
          ? badge(`expired ${-days} days ago`, "bad")
          : days < (data.warnDays ?? EXPIRY_WARN_DAYS)
            ? badge(`${days} days left`, "warn")
            : badge(`${days} days left`, "ok");
    }
    return html`<tr><td><code>${k.path}</code>${k.usedBy.length ? html`<br><span class="muted">${k.usedBy.join(", ")}</span>` : ""}</td>
<td class="hide-sm">${k.type ?? ""}</td><td class="nowrap">${k.expiry !== undefined ? new Date(k.expiry * 1000).toISOString().slice(0, 10) : ""}</td><td>${status}</td></tr>`;
  });
  return html`<section id="keyrings"><h2>Keyrings</h2><div class="scroll"><table>
<thead><tr><th>Keyring</th><th class="hide-sm">Type</th><th>Expires</th><th>Status</th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
}

function historySection(data: DashboardData): SafeHtml {
  if (data.runs.length === 0)
    return html`<section id="history"><h2>Import history</h2><p class="muted">No imports recorded yet.</p></section>`;
  const rows = data.runs.map((r) => {
    const dur = r.finished_at ? formatDuration((Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000) : "running";
    const published = r.devices.filter((d) => d.outcome === "published");
    const failed = r.devices.filter((d) => d.outcome === "failed");
    const sub = failed.map(
      (d) =>
        html`<tr class="sub failed"><td colspan="5"><strong>${d.channel}/${d.device}</strong> failed: <span class="error">${d.error ?? "unknown error"}</span></td></tr>`,
    );
    const pubs = published.map(
      (d) =>
        html`<tr class="sub"><td colspan="5">${d.channel}/${d.device}: published version ${d.version ?? "?"} (${d.files} files, ${formatBytes(d.bytes)})</td></tr>`,
    );
    return html`<tr><td class="num">#${r.id}</td><td class="nowrap">${when(r.started_at)}</td><td class="hide-sm">${r.trigger}</td><td>${badge(r.outcome)}${
      r.error ? html`<br><span class="error">${r.error}</span>` : ""
    }</td><td class="num">${dur}</td></tr>${pubs}${sub}`;
  });
  return html`<section id="history"><h2>Import history</h2><div class="scroll"><table>
<thead><tr><th class="num">Run</th><th>Started</th><th class="hide-sm">Trigger</th><th>Outcome</th><th class="num">Duration</th></tr></thead>
<tbody>${rows}</tbody></table></div></section>`;
}

function verificationSection(data: DashboardData): SafeHtml {
  const { last, running } = data.verification;
  const button = html`<form method="post" action="verify"><button type="submit">Verify now</button></form>`;
  const state = running ? html`<p>${badge("running", "info")} since ${when(running.since)} (${running.trigger})</p>` : "";
  let body: SafeHtml;
  if (!last) body = html`<p class="muted">The tree has not been verified yet.</p>`;
  else if (!last.report)
    body = html`<p>${badge("error")} ${when(last.started_at)}: <span class="error">${last.error ?? "no report"}</span></p>`;
  else {
    const r = last.report;
    const c = r.checked;
    const shown = r.problems.slice(0, 50);
    body = html`<p>${r.ok ? badge("OK", "ok") : badge("FAILED", "bad")} ${when(last.started_at)} · ${last.trigger} · ${formatDuration(last.duration_ms / 1000)}<br>
<span class="muted">${r.errors} error(s), ${r.warnings} warning(s); ${c.signatures} signatures, ${c.files} files, ${c.indexes} indexes, ${c.keyrings} keyrings checked</span></p>
${shown.length ? html`<ul class="problems">${shown.map((p) => html`<li>${badge(p.severity, p.severity === "error" ? "bad" : "warn")} <code>${p.file}</code> ${p.message}</li>`)}</ul>` : ""}
${r.problems.length > shown.length ? html`<p class="muted">${r.problems.length - shown.length} more problem(s): run <code>si verify-tree</code>.</p>` : ""}
${r.skipped.length ? html`<ul class="problems">${r.skipped.map((s) => html`<li class="muted">not checked: ${s}</li>`)}</ul>` : ""}`;
  }
  return html`<section id="verification"><h2>Tree verification</h2>${state}${body}<p>${button}</p></section>`;
}

/** Files verify-tree found imported without verify= (issue 13): a warning badge in the Tree tile. */
const unverifiedUpstreams = (problems: { message: string }[] | undefined) => {
  const n = (problems ?? []).filter((p) => p.message.startsWith("unverified upstream")).length;
  return n ? html` ${badge(`${n} unverified upstream file${n === 1 ? "" : "s"}`, "warn")}` : "";
};

function summary(data: DashboardData): SafeHtml {
  const devices = data.fleet.channels.reduce((n, c) => n + c.devices.length, 0);
  // A staged rollout's raise (trigger "rollout") is a run of the history, not an import.
  const last = data.runs.find((r) => r.trigger !== ROLLOUT_TRIGGER);
  const expiring = data.keyrings.filter(
    (k) => k.error || (k.expiry !== undefined && daysLeft(k.expiry, data.now) < (data.warnDays ?? EXPIRY_WARN_DAYS)),
  );
  const v = data.verification.last;
  const s = data.scheduler;
  const tile = (label: string, value: SafeHtml | string, note: SafeHtml | string = "") =>
    html`<div class="tile"><div class="label">${label}</div><div class="value">${value}</div><div class="note">${note}</div></div>`;
  return html`<div class="summary">
${tile("Channels", String(data.fleet.channels.length), `${devices} device(s)`)}
${tile("Last import", last ? badge(last.outcome) : html`<span class="muted">none</span>`, last ? ago(new Date(last.started_at), data.now) : "")}
${tile("Keyrings", expiring.length ? badge(`${expiring.length} need${expiring.length === 1 ? "s" : ""} attention`, "warn") : badge("ok", "ok"), `${data.keyrings.length} published`)}
${tile("Tree", v?.report ? (v.report.ok ? badge("verified", "ok") : badge(`${v.report.errors} error(s)`, "bad")) : v ? badge("error") : html`<span class="muted">not verified</span>`, html`${v ? ago(new Date(v.started_at), data.now) : ""}${unverifiedUpstreams(v?.report?.problems)}`)}
${tile("Schedule", s ? html`<code>${s.expression}</code>` : html`<span class="muted">off</span>`, s ? (s.runningSince ? "import running" : s.nextRun ? `next ${ago(s.nextRun, data.now)}` : "") : "import_schedule unset")}
</div>`;
}

export function renderDashboard(data: DashboardData): string {
  const page = html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">${
    // While something runs, the page reloads itself to show the result.
    data.verification.running || data.scheduler?.runningSince ? html`\n<meta http-equiv="refresh" content="5">` : ""
  }
<title>${data.title} · system-image</title>
<style>${raw(DASHBOARD_CSS)}</style></head>
<body><header><h1>${data.title}</h1><div class="sub">${data.publishPath} · ${when(data.now)} · times in UTC</div></header>
<main>${summary(data)}${channelsSection(data)}${data.adoption ?? ""}
<section id="chart"><h2>Published bytes and import durations</h2>${renderChart(data.stats.points)}</section>
${historySection(data)}${keyringsSection(data)}${verificationSection(data)}</main>
<footer><a href="metrics">metrics</a> · <a href="healthz">healthz</a>${
    data.loggedIn ? html` · <form method="post" action="logout"><button type="submit">Log out</button></form>` : ""
  }</footer></body></html>`;
  return page.value;
}
