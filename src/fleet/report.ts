/**
 * `si fleet report`: adoption rows per channel, device and image (the `--json` shape), from
 * access records (logs) or from the live counts si serve keeps (store.ts). Every image of the
 * current indexes gets a row, with zeros when nothing was counted; counts of images no longer
 * in an index (live counts) keep their own rows.
 */
import { randomBytes } from "node:crypto";
import { compareCodePoints } from "../format/pyjson.js";
import { ownerKey, type Attribution, type ImageKind, type ImageRef } from "./attribution.js";
import type { AccessRecord } from "./records.js";
import { Tally } from "./tally.js";
import { readAttribution } from "./tree-docs.js";

export interface AdoptionRow {
  channel: string;
  device: string;
  /** The target version. */
  version: number;
  kind: ImageKind;
  /** The delta's base version; null for a full image. */
  base: number | null;
  /** Downloads of the image's marker file that started at byte 0. */
  started: number;
  /** Downloads whose body reached the marker's last byte whole. */
  completed: number;
  /** Distinct polling clients of the channel/device over the whole input (an estimate). */
  clients: number;
}

/** Channel, device (code points), then version and base newest first, full before delta. */
export function compareRows(a: ImageRef, b: ImageRef): number {
  return (
    compareCodePoints(a.channel, b.channel) ||
    compareCodePoints(a.device, b.device) ||
    b.version - a.version ||
    (a.kind === b.kind ? 0 : a.kind === "full" ? -1 : 1) ||
    (b.base ?? -1) - (a.base ?? -1)
  );
}

const rowKey = (i: ImageRef) => [i.channel, i.device, i.version, i.kind, i.base ?? ""].join("\u0000");

/** Rows from download counts and client counts per `channel\0device`, with the index's images as zero rows. */
export function buildRows(
  attr: Attribution,
  downloads: Iterable<{ image: ImageRef; started: number; completed: number }>,
  clients: Map<string, number>,
): AdoptionRow[] {
  const rows = new Map<string, AdoptionRow>();
  const row = (i: ImageRef) => {
    const key = rowKey(i);
    let r = rows.get(key);
    if (!r) {
      r = { channel: i.channel, device: i.device, version: i.version, kind: i.kind, base: i.base, started: 0, completed: 0, clients: 0 };
      r.clients = clients.get(ownerKey(i.channel, i.device)) ?? 0;
      rows.set(key, r);
    }
    return r;
  };
  for (const i of attr.images) row(i);
  for (const d of downloads) {
    const r = row(d.image);
    r.started += d.started;
    r.completed += d.completed;
  }
  return [...rows.values()].sort(compareRows);
}

/** Distinct clients per `channel\0device` of a tally (any bucket). */
export function clientCounts(tally: Tally): Map<string, number> {
  const seen = new Map<string, Set<string>>();
  for (const c of tally.clients.values()) {
    const key = ownerKey(c.channel, c.device);
    let set = seen.get(key);
    if (!set) seen.set(key, (set = new Set()));
    set.add(c.client);
  }
  return new Map([...seen].map(([k, s]) => [k, s.size]));
}

/**
 * Adoption rows from access records (one log or several, in any order), attributed against
 * the published tree under `publishPath` as it is now. Clients are counted over the whole
 * input (an in-memory salt: nothing is stored).
 */
export async function fleetReport(
  entries: AsyncIterable<AccessRecord> | Iterable<AccessRecord>,
  tree: { publishPath: string } | { attribution: Attribution },
): Promise<AdoptionRow[]> {
  const attr = "attribution" in tree ? tree.attribution : readAttribution(tree.publishPath);
  const tally = new Tally(randomBytes(32));
  for await (const rec of entries) tally.observe(rec, attr);
  return buildRows(attr, tally.downloads.values(), clientCounts(tally));
}
