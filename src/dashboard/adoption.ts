/**
 * Adoption per device on the dashboard: for each channel/device with counts, an inline SVG
 * (no script) of completed downloads per target version, cumulated day by day, so a new
 * version's line climbing while the old ones flatten is the fleet moving over; and a table of
 * the totals. Figures come from si serve's live counts (src/fleet/store.ts).
 */
import type { Config } from "../config/types.js";
import { errorMessage } from "../errors.js";
import { adoptionSeries, countedDevices, type AdoptionSeries } from "../fleet/store.js";
import { html, type SafeHtml } from "./html.js";
import { niceCeil } from "./chart.js";

const W = 480;
const H = 200;
const PAD = { left: 52, right: 16, top: 12, bottom: 30 };
/** Versions drawn one by one (newest); older ones share one line. */
const MAX_LINES = 5;
const COLOURS = ["#0969da", "#1a7f37", "#bc4c00", "#8250df", "#bf3989", "#57606a"];

/** The live series of every counted channel/device; an unreadable database yields an error instead. */
export function loadAdoption(config: Config): { series: AdoptionSeries[]; error?: string } {
  try {
    return { series: countedDevices(config.state_path).map((d) => adoptionSeries(config.state_path, d.channel, d.device)) };
  } catch (err) {
    return { series: [], error: errorMessage(err) };
  }
}

interface Line {
  label: string;
  colour: string;
  /** Cumulative completed downloads at the end of each day. */
  values: number[];
  completed: number;
  started: number;
}

function linesOf(s: AdoptionSeries, days: string[]): Line[] {
  const versions = [...new Set(s.points.map((p) => p.version))].sort((a, b) => b - a);
  const drawn = versions.slice(0, MAX_LINES);
  const groups = drawn.map((v) => ({ label: `version ${v}`, has: (x: number) => x === v }));
  if (versions.length > MAX_LINES) groups.push({ label: `older (≤ ${versions[MAX_LINES]})`, has: (x: number) => x <= versions[MAX_LINES] });
  return groups.map((g, i) => {
    let total = 0;
    let started = 0;
    const values = days.map((day) => {
      for (const p of s.points) {
        if (p.day !== day || !g.has(p.version)) continue;
        total += p.completed;
        started += p.started;
      }
      return total;
    });
    return { label: g.label, colour: COLOURS[i % COLOURS.length], values, completed: total, started };
  });
}

function chartOf(s: AdoptionSeries): SafeHtml {
  const days = [...new Set(s.points.map((p) => p.day))].sort();
  const lines = linesOf(s, days);
  const max = niceCeil(Math.max(1, ...lines.flatMap((l) => l.values)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const r = (n: number) => Math.round(n * 10) / 10;
  const x = (i: number) => r(PAD.left + (days.length === 1 ? plotW / 2 : (plotW * i) / (days.length - 1)));
  const y = (v: number) => r(PAD.top + plotH * (1 - v / max));
  const grid = [0, 0.5, 1].map(
    (f) => html`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(max * f)}" y2="${y(max * f)}" class="grid"/>
<text x="${PAD.left - 6}" y="${y(max * f) + 4}" text-anchor="end" class="axis">${max * f}</text>`,
  );
  const plots = lines.map((l) =>
    l.values.length === 1
      ? html`<circle cx="${x(0)}" cy="${y(l.values[0])}" r="3" fill="${l.colour}"><title>${l.label}: ${l.values[0]}</title></circle>`
      : html`<polyline points="${l.values.map((v, i) => `${x(i)},${y(v)}`).join(" ")}" stroke="${l.colour}"><title>${l.label}</title></polyline>`,
  );
  const ticks = [...new Set([0, days.length - 1])].map(
    (i) => html`<text x="${x(i)}" y="${H - PAD.bottom + 20}" text-anchor="middle" class="axis">${days[i]}</text>`,
  );
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${`Completed downloads per version, ${s.channel}/${s.device}`}">
<style>.grid{stroke:#d0d7de;stroke-width:1}.axis{font:12px system-ui,sans-serif;fill:#57606a}polyline{fill:none;stroke-width:2}</style>
${grid}${plots}${ticks}
</svg>
<table><thead><tr><th></th><th>Target</th><th>Started</th><th>Completed</th></tr></thead><tbody>${lines.map(
    (l) =>
      html`<tr><td><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="${l.colour}"/></svg></td><td>${l.label}</td><td>${l.started}</td><td>${l.completed}</td></tr>`,
  )}</tbody></table>`;
}

/** The adoption section: one chart per channel/device with counts. */
export function renderAdoption(loaded: { series: AdoptionSeries[]; error?: string }): SafeHtml {
  const body =
    loaded.error !== undefined
      ? html`<p class="error">Cannot read the adoption figures: ${loaded.error}</p>`
      : loaded.series.length === 0
        ? html`<p class="muted">No downloads or index polls counted yet (si serve counts them; behind nginx or a CDN use <code>si fleet report --access-log</code>).</p>`
        : loaded.series.map(
            (s) => html`<h3>${s.channel} / ${s.device}</h3>
${s.points.length === 0 ? html`<p class="muted">Index polls only, no downloads yet.</p>` : chartOf(s)}`,
          );
  return html`<section id="adoption"><h2>Adoption</h2>
<p class="muted">Completed downloads per target version, cumulated by day (UTC), as si serve counted them.</p>
${body}</section>`;
}
