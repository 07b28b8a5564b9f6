/**
 * The dashboard's chart as inline SVG (no script, no front-end build): one slot per import
 * run, oldest on the left; bars = bytes published by the run (left axis), line = how long
 * the run took (right axis); failed runs get a red mark under their slot. It scales to the
 * page width, so it stays readable on a phone.
 */
import { html, type SafeHtml } from "./html.js";
import type { RunPoint } from "./history-stats.js";

// A narrow canvas with large type: scaled down to a phone's width the labels stay legible.
const W = 480;
const H = 220;
const PAD = { left: 58, right: 58, top: 14, bottom: 36 };

/** 1, 2 or 5 times a power of ten, at least `v` (an axis maximum). */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** An axis maximum for durations: round seconds, minutes or hours, at least `v` seconds. */
export function niceDurationCeil(v: number): number {
  for (const s of [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200]) if (s >= v) return s;
  return niceCeil(v / 3600) * 3600;
}

export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(s: number): string {
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const join = (a: string, n: number, unit: string) => (n ? `${a} ${n} ${unit}` : a);
  if (s < 3600) return join(`${Math.floor(s / 60)} min`, Math.round(s % 60), "s");
  return join(`${Math.floor(s / 3600)} h`, Math.round((s % 3600) / 60), "min");
}

const day = (unix: number) => new Date(unix * 1000).toISOString().slice(5, 16).replace("T", " ");

export function renderChart(points: RunPoint[]): SafeHtml {
  if (points.length === 0) return html`<p class="muted">No import runs yet.</p>`;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const maxBytes = niceCeil(Math.max(...points.map((p) => p.publishedBytes)));
  const maxSecs = niceDurationCeil(Math.max(...points.map((p) => p.duration ?? 0)));
  const slot = plotW / points.length;
  const x = (i: number) => PAD.left + slot * (i + 0.5);
  const yBytes = (b: number) => PAD.top + plotH * (1 - b / maxBytes);
  const ySecs = (s: number) => PAD.top + plotH * (1 - s / maxSecs);
  const barW = Math.max(2, Math.min(28, slot * 0.6));
  const r = (n: number) => Math.round(n * 10) / 10;

  const grid = [0, 0.5, 1].map((f) => {
    const y = r(PAD.top + plotH * (1 - f));
    return html`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" class="grid"/>
<text x="${PAD.left - 6}" y="${y + 4}" text-anchor="end" class="axis bytes">${formatBytes(maxBytes * f)}</text>
<text x="${W - PAD.right + 6}" y="${y + 4}" class="axis secs">${formatDuration(maxSecs * f)}</text>`;
  });
  const bars = points.map((p, i) => {
    const tip = `Run #${p.id} ${new Date(p.started * 1000).toISOString()}: ${p.outcome}, ${p.published} image(s), ${formatBytes(p.publishedBytes)}, ${p.duration === undefined ? "running" : formatDuration(p.duration)}`;
    const y = r(yBytes(p.publishedBytes));
    const failed = p.outcome === "failed" || p.outcome === "partial" || p.outcome === "interrupted";
    return html`<g><title>${tip}</title><rect x="${r(x(i) - barW / 2)}" y="${y}" width="${r(barW)}" height="${r(PAD.top + plotH - y)}" class="bar"/>${
      failed ? html`<rect x="${r(x(i) - barW / 2)}" y="${PAD.top + plotH + 3}" width="${r(barW)}" height="4" class="${p.outcome}"/>` : ""
    }</g>`;
  });
  const timed = points.map((p, i) => ({ p, i })).filter(({ p }) => p.duration !== undefined);
  const line = timed.map(({ p, i }) => `${r(x(i))},${r(ySecs(p.duration!))}`).join(" ");
  const dots = timed.map(({ p, i }) => html`<circle cx="${r(x(i))}" cy="${r(ySecs(p.duration!))}" r="3" class="dot"/>`);
  const ticks = [...new Set([0, Math.floor((points.length - 1) / 2), points.length - 1])].map(
    (i) => html`<text x="${r(x(i))}" y="${H - PAD.bottom + 24}" text-anchor="middle" class="axis">${day(points[i].started)}</text>`,
  );
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Published bytes and import durations per run">
<style>.grid{stroke:#d0d7de;stroke-width:1}.axis{font:13px system-ui,sans-serif;fill:#57606a}.axis.bytes{fill:#0969da}.axis.secs{fill:#bc4c00}.bar{fill:#54aeff}.dot{fill:#bc4c00}.failed,.interrupted{fill:#cf222e}.partial{fill:#d4a72c}polyline{fill:none;stroke:#bc4c00;stroke-width:2}</style>
${grid}${bars}
${timed.length > 1 ? html`<polyline points="${line}"/>` : ""}${dots}${ticks}
</svg>
<p class="legend"><span class="key bytes"></span>bytes published per run <span class="key secs"></span>run duration <span class="key failed"></span>failed run <span class="key partial"></span>partly failed run</p>`;
}
