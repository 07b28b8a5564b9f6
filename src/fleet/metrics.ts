/**
 * Fleet figures for /metrics (complete families, appended by src/dashboard/metrics.ts):
 * `si_fleet_downloads_started_total`, `si_fleet_downloads_completed_total` per image and
 * `si_fleet_polling_clients` per channel/device (today's distinct clients, UTC).
 *
 * Cardinality is bounded by the published tree: one series per image still in an index (all
 * of them, zeros included, so rate() starts from 0); counts of images no longer in any index
 * fold into `version="other"` (kind kept, base ""), so a removed image's series ends and its
 * counts move to `other`. Polling clients only for channel/devices that own an index.
 */
import { ownerKey, type ImageRef } from "./attribution.js";
import { openStateDb } from "../state/db.js";
import { dayBucket, liveTotals } from "./store.js";
import { readAttribution } from "./tree-docs.js";
import { compareRows } from "./report.js";

/** A label value in the exposition format: `\`, `"` and newlines escaped. */
const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

const labels = (i: { channel: string; device: string; version: string; kind: string; base: string }) =>
  `{channel="${esc(i.channel)}",device="${esc(i.device)}",version="${esc(i.version)}",kind="${esc(i.kind)}",base="${esc(i.base)}"}`;

const HEADERS = {
  started: [
    '# HELP si_fleet_downloads_started_total Downloads of an image\'s marker file started at byte 0, counted by si serve (images no longer in an index: version="other").',
    "# TYPE si_fleet_downloads_started_total counter",
  ],
  completed: [
    "# HELP si_fleet_downloads_completed_total Downloads of an image's marker file whose body reached the last byte whole.",
    "# TYPE si_fleet_downloads_completed_total counter",
  ],
  clients: [
    "# HELP si_fleet_polling_clients Distinct clients (salted hash of address and User-Agent) that fetched the channel/device's index today (UTC); an estimate.",
    "# TYPE si_fleet_polling_clients gauge",
  ],
};

/**
 * The three families. When the state database cannot be read they come without samples
 * (absent, rather than zeros that would look like a counter reset), and the rest of /metrics
 * is still served.
 */
export function fleetMetricLines(statePath: string, publishPath: string, now: Date = new Date()): string[] {
  try {
    return fleetMetricSamples(statePath, publishPath, now);
  } catch {
    return [...HEADERS.started, ...HEADERS.completed, ...HEADERS.clients];
  }
}

function fleetMetricSamples(statePath: string, publishPath: string, now: Date): string[] {
  const attr = readAttribution(publishPath);
  const { downloads } = liveTotals(statePath);
  const key = (i: ImageRef) => [i.channel, i.device, i.version, i.kind, i.base ?? ""].join("\u0000");
  const current = new Set(attr.images.map(key));
  const owners = new Set([...attr.pollDirs.values()].map((o) => ownerKey(o.channel, o.device)));
  type Series = { image: ImageRef; labels: string; started: number; completed: number };
  const series = new Map<string, Series>();
  const add = (image: ImageRef, started: number, completed: number) => {
    const inIndex = current.has(key(image));
    const l = labels({
      channel: image.channel,
      device: image.device,
      version: inIndex ? String(image.version) : "other",
      kind: image.kind,
      base: inIndex && image.base !== null ? String(image.base) : "",
    });
    const s = series.get(l) ?? { image: inIndex ? image : { ...image, version: -1, base: null }, labels: l, started: 0, completed: 0 };
    s.started += started;
    s.completed += completed;
    series.set(l, s);
  };
  for (const i of attr.images) add(i, 0, 0);
  // Only channel/devices still published: a removed device's counts would be unbounded history.
  for (const d of downloads) if (owners.has(ownerKey(d.image.channel, d.image.device))) add(d.image, d.started, d.completed);
  const sorted = [...series.values()].sort((a, b) => compareRows(a.image, b.image) || (a.labels < b.labels ? -1 : 1));

  const db = openStateDb(statePath);
  let polling: { channel: string; device: string; n: number }[];
  try {
    polling = db
      .prepare("SELECT channel, device, COUNT(*) AS n FROM fleet_clients WHERE day = ? GROUP BY channel, device ORDER BY 1, 2")
      .all(dayBucket(now.getTime())) as { channel: string; device: string; n: number }[];
  } finally {
    db.close();
  }
  const today = new Map(polling.map((p) => [ownerKey(p.channel, p.device), p.n]));
  return [
    ...HEADERS.started,
    ...sorted.map((s) => `si_fleet_downloads_started_total${s.labels} ${s.started}`),
    ...HEADERS.completed,
    ...sorted.map((s) => `si_fleet_downloads_completed_total${s.labels} ${s.completed}`),
    ...HEADERS.clients,
    ...[...attr.pollDirs.values()].map(
      (o) =>
        `si_fleet_polling_clients{channel="${esc(o.channel)}",device="${esc(o.device)}"} ${today.get(ownerKey(o.channel, o.device)) ?? 0}`,
    ),
  ];
}
