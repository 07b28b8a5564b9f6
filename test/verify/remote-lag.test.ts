/**
 * The freshness verdict of `si verify-tree --server` (src/verify/remote-lag.ts): a mirror is
 * as current as this instance when its channels.json is the same, or every index it names is
 * as new or newer; otherwise it is behind by the largest generated_at difference.
 */
import { describe, expect, it } from "vitest";
import { formatGeneratedAt } from "../../src/model/generated-at.js";
import { compareFreshness, parseGeneratedAt, type TreeTimes } from "../../src/verify/remote-lag.js";

const T = Date.UTC(2026, 10, 29, 5, 43, 7) / 1000;
const side = (channels: string, times: Record<string, number | null>): TreeTimes => ({
  channels: Buffer.from(channels),
  times: new Map(Object.entries(times)),
});

describe("parseGeneratedAt", () => {
  it("reads what the server writes, and nothing else", () => {
    expect(parseGeneratedAt("Sun Nov 29 05:43:07 UTC 2026")).toBe(T);
    expect(parseGeneratedAt(formatGeneratedAt(new Date(Date.UTC(2027, 0, 2, 3, 4, 5))))).toBe(Date.UTC(2027, 0, 2, 3, 4, 5) / 1000);
    expect(parseGeneratedAt("Mon Mar  2 10:00:00 UTC 2026")).toBe(Date.UTC(2026, 2, 2, 10) / 1000);
    for (const bad of ["2026-11-29T05:43:07Z", "Sun Foo 29 05:43:07 UTC 2026", "Sun Nov 29 05:43:07 CET 2026", 1764395000, undefined]) {
      expect(parseGeneratedAt(bad)).toBeNull();
    }
  });
});

describe("compareFreshness", () => {
  it("same bytes: lag 0, whatever the times say", () => {
    expect(compareFreshness(side("A", { "devel/mako": T }), side("A", { "devel/mako": null }))).toEqual({
      lagSeconds: 0,
      errors: [],
      warnings: [],
    });
  });

  it("older: behind by the largest difference, naming the device", () => {
    const f = compareFreshness(
      side("A", { "devel/mako": T, "stable/mako": T }),
      side("B", { "devel/mako": T - 90, "stable/mako": T - 30 }),
    );
    expect(f.lagSeconds).toBe(90);
    expect(f.errors).toEqual([
      "behind the local tree by 90 s (devel/mako: generated_at 2026-11-29T05:41:37Z on the mirror, 2026-11-29T05:43:07Z here)",
    ]);
  });

  it("newer, or newer for one device and as new for the rest: fine", () => {
    const f = compareFreshness(side("A", { "devel/mako": T, "stable/mako": T }), side("B", { "devel/mako": T + 5, "stable/mako": T }));
    expect(f).toEqual({ lagSeconds: 0, errors: [], warnings: [] });
  });

  it("a device the mirror does not have yet is an error; one only the mirror has is not", () => {
    const f = compareFreshness(side("A", { "devel/mako": T, "devel/hammerhead": T }), side("B", { "devel/mako": T, "devel/flo": T }));
    expect(f.errors).toEqual(["has no devel/hammerhead, which the local channels.json names: the mirror is behind"]);
    expect(f.lagSeconds).toBe(0);
  });

  it("other bytes with equal times: a warning (a channel change not pushed yet)", () => {
    const f = compareFreshness(side("A", { "devel/mako": T }), side("B", { "devel/mako": T }));
    expect(f.errors).toEqual([]);
    expect(f.warnings[0]).toMatch(/^differs from the local channels\.json although every index it names is as new/);
  });

  it("no local tree, or no comparable time: lag unknown", () => {
    expect(compareFreshness(null, side("B", {})).lagSeconds).toBeNull();
    expect(compareFreshness(side("A", { "devel/mako": null }), side("B", { "devel/mako": T })).lagSeconds).toBeNull();
  });
});
