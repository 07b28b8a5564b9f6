/**
 * Is a mirror as current as this instance? Compared per channel/device by the
 * `global.generated_at` of the index each channels.json names (the only time the documents
 * carry: src/model/generated-at.ts writes it, client-protocol §5.2). Same channels.json bytes
 * = lag 0; a mirror that is newer or as new is fine; one that is older is behind by the
 * largest difference. Pure: texts and times in, verdict out.
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const GENERATED_AT = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) UTC (\d{4})$/;

/** Seconds since the epoch of `Sun Nov 29 05:43:07 UTC 2026`; null when it is not one. */
export function parseGeneratedAt(v: unknown): number | null {
  if (typeof v !== "string") return null;
  const m = GENERATED_AT.exec(v.trim());
  if (!m) return null;
  const month = MONTHS.indexOf(m[1]);
  if (month < 0) return null;
  const [day, h, min, s, year] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  return Date.UTC(year, month, day, h, min, s) / 1000;
}

/** One side: channels.json's bytes and, per "channel/device", its index's generated_at. */
export interface TreeTimes {
  channels: Buffer;
  times: Map<string, number | null>;
}

export interface Freshness {
  /** Seconds the mirror is behind (0 when same or newer); null when not comparable. */
  lagSeconds: number | null;
  errors: string[];
  warnings: string[];
}

const iso = (s: number) => new Date(s * 1000).toISOString().replace(".000Z", "Z");

export function compareFreshness(local: TreeTimes | null, remote: TreeTimes): Freshness {
  if (!local) return { lagSeconds: null, errors: [], warnings: ["no local channels.json to compare with: lag unknown"] };
  if (local.channels.equals(remote.channels)) return { lagSeconds: 0, errors: [], warnings: [] };
  const errors: string[] = [];
  const warnings: string[] = [];
  let lag = 0;
  let worst = "";
  let newer = false;
  let compared = 0;
  for (const [key, l] of local.times) {
    if (!remote.times.has(key)) {
      errors.push(`has no ${key}, which the local channels.json names: the mirror is behind`);
      continue;
    }
    const r = remote.times.get(key) ?? null;
    if (l === null || r === null) continue;
    compared++;
    if (r > l) newer = true;
    if (l - r > lag) {
      lag = l - r;
      worst = `${key}: generated_at ${iso(r)} on the mirror, ${iso(l)} here`;
    }
  }
  if (lag > 0) errors.push(`behind the local tree by ${lag} s (${worst})`);
  else if (errors.length === 0 && !newer && compared > 0) {
    // Same indexes, other bytes: a channel setting (alias, hidden, keyring) not pushed yet.
    warnings.push("differs from the local channels.json although every index it names is as new: a channel change not pushed yet?");
  }
  return { lagSeconds: compared > 0 || errors.length > 0 ? lag : null, errors, warnings };
}
