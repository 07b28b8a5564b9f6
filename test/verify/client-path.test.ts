/**
 * The client's path choice (client-protocol §6), reproduced in src/verify/client-path.ts and
 * py-random.ts: CPython's set order and Mersenne Twister are checked against python3 itself,
 * the scoring and phasing against the cases the spec records from real client runs.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import type { Image } from "../../src/model/index-doc.js";
import {
  MiB,
  choosePath,
  getCandidates,
  imageHash,
  pathLabel,
  pySetOrder,
  ubuntuCommand,
  weightedScores,
} from "../../src/verify/client-path.js";
import { devicePhase, pyRandomFromString } from "../../src/verify/py-random.js";

const python = (script: string, input: unknown): unknown =>
  JSON.parse(execFileSync("python3", ["-c", script], { input: JSON.stringify(input), encoding: "utf8" }));

let n = 0;
function img(type: "full" | "delta", version: number, opts: Partial<Image> & { size?: number } = {}): Image {
  const { size = 1000, ...rest } = opts;
  const name = `f${n++}`;
  return {
    type,
    version,
    description: "",
    files: [{ path: `/pool/${name}.tar.xz`, signature: `/pool/${name}.tar.xz.asc`, checksum: "0".repeat(64), size, order: 0 }],
    ...rest,
  };
}
const full = (v: number, o?: Partial<Image> & { size?: number }) => img("full", v, o);
const delta = (base: number, v: number, o?: Partial<Image> & { size?: number }) => img("delta", v, { base, ...o });
const labels = (paths: Image[][]) => paths.map(pathLabel);
const choose = (images: Image[], build: number, phase = 50) =>
  pathLabel(choosePath(getCandidates(images, build), { channel: null, machineId: "x", phaseOverride: phase }).winner);

describe("CPython compatibility", () => {
  it("iterates a set of images in CPython's order, for many random insertion sequences", () => {
    let seed = 42;
    const rand = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % k);
    const cases = Array.from({ length: 200 }, () =>
      Array.from({ length: 1 + rand(60) }, () => {
        const version = 1 + rand(3000);
        return version * 65536 + (rand(3) === 0 ? 0 : rand(version));
      }),
    );
    const script = `
import json, sys
class I:
    def __init__(s, h): s.h = h
    def __hash__(s): return s.h
    def __eq__(s, o): return s.h == o.h
out = []
for seq in json.load(sys.stdin):
    st = set()
    for h in seq: st.add(I(h))
    out.append([i.h for i in st])
print(json.dumps(out))`;
    expect(cases.map((c) => pySetOrder(c, (h) => h))).toEqual(python(script, cases));
  });

  it("draws random.Random(seed).randint(0, 100) like CPython, and the spec's test vector", () => {
    expect(devicePhase("tubular", 304, "0000000000000000aaaaaaaaaaaaaaaa")).toBe(25);
    const seeds = ["None.2.0123456789abcdef0123456789abcdef", "devel.1.x", "", "é漢字.7.id", "a".repeat(300)];
    const script = `
import json, sys, random
print(json.dumps([[random.Random(s).randint(0, 100), random.Random(s).getrandbits(32)] for s in json.load(sys.stdin)]))`;
    expect(seeds.map((s) => [pyRandomFromString(s).randint(0, 100), pyRandomFromString(s).genrandUint32()])).toEqual(python(script, seeds));
  });

  it("seeds a non-alias channel with the literal None (the client's quirk)", () => {
    expect(devicePhase(null, 2, "  abc\n")).toBe(pyRandomFromString("None.2.abc").randint(0, 100));
  });
});

describe("getCandidates", () => {
  it("starts at every newer full and every delta from the build, and runs each to the end of its delta chain", () => {
    const images = [full(1), full(2), delta(1, 2), delta(2, 3), full(3, { minversion: 2 })];
    expect(labels(getCandidates(images, 0))).toEqual(["1:2:3", "2:3"]);
    expect(labels(getCandidates(images, 1))).toEqual(["2:3", "2:3"]);
    expect(getCandidates(images, 1).map((p) => p[0].type)).toEqual(["full", "delta"]);
    expect(labels(getCandidates(images, 2))).toEqual(["3", "3"]);
    expect(labels(getCandidates(images, 3))).toEqual([]);
  });

  it("clones a path at a fork, one branch per delta", () => {
    const images = [delta(1, 2), delta(2, 3), delta(2, 4), delta(4, 5)];
    expect(labels(getCandidates(images, 1)).sort()).toEqual(["2:3", "2:4:5"]);
  });

  it("asserts 16-bit versions like Image.__hash__", () => {
    expect(() => getCandidates([full(70000)], 0)).toThrow(/16 bit unsigned version numbers only/);
    expect(imageHash(delta(3, 5))).toBe(5 * 65536 + 3);
  });
});

describe("WeightedScorer and phasing", () => {
  it("scores 100 per bootme, 1 per whole MiB over the smallest, 9001 per version short", () => {
    const paths = [
      [full(1, { size: 3 * MiB }), delta(1, 2, { size: MiB - 1 })],
      [full(2, { size: 3 * MiB + 10 })],
      [full(1, { size: 10, bootme: true })],
    ];
    // Smallest: the 10-byte path; 4 MiB - 1 and 3 MiB + 10 over it both count 3 whole MiB.
    expect(weightedScores(paths)).toEqual([3, 3, 100 + 9001]);
  });

  it("gives a tie under 1 MiB to the first candidate: 1:2 from build 0, full 2 from build 1", () => {
    const images = [full(1), full(2), delta(1, 2)];
    expect(choose(images, 0)).toBe("1:2");
    const winner = choosePath(getCandidates(images, 1), { channel: null, machineId: "x", phaseOverride: 0 }).winner;
    expect(winner.map((i) => i.type)).toEqual(["full"]);
    // Padding full 1 by 2 MiB makes full 2 win (spec, run case 06).
    expect(choose([full(1, { size: 2 * MiB }), full(2), delta(1, 2)], 0)).toBe("2");
  });

  it("takes the best path whose LAST image admits the device's phase; 0 means pulled", () => {
    // Two deltas to 3: the B path scores better but is phased at 50%.
    const images = [full(1), delta(1, 2), delta(2, 3, { size: 5 * MiB }), delta(1, 3, { "phased-percentage": 50 })];
    expect(choosePath(getCandidates(images, 1), { channel: null, machineId: "x", phaseOverride: 50 }).winner.length).toBe(1);
    const fallback = choosePath(getCandidates(images, 1), { channel: null, machineId: "x", phaseOverride: 66 }).winner;
    expect(pathLabel(fallback)).toBe("2:3");
    expect(choose([full(1), full(2, { "phased-percentage": 0 }), delta(1, 2, { "phased-percentage": 0 })], 0)).toBe("");
  });

  it("uses the alias for the seed, else channel_target, and max target over all candidates", () => {
    const images = [full(1), full(2, { "phased-percentage": 40 })];
    const phase = devicePhase("stable", 2, "m");
    const c = choosePath(getCandidates(images, 0), { channel: "stable", machineId: "m" });
    expect(c.phase).toBe(phase);
    expect(pathLabel(c.winner)).toBe(phase <= 40 ? "2" : "1");
  });
});

describe("ubuntuCommand", () => {
  it("formats system when the winner has a full, sorts updates by (image, order, name), stops after bootme", () => {
    const f1 = full(1);
    f1.files = [
      { path: "/pool/b.tar.xz", signature: "/pool/b.tar.xz.asc", checksum: "", size: 1, order: 1 },
      { path: "/pool/z.tar.xz", signature: "/pool/z.tar.xz.asc", checksum: "", size: 1, order: 0 },
      { path: "/pool/a.tar.xz", signature: "/pool/a.tar.xz.asc", checksum: "", size: 1, order: 1 },
    ];
    const d2 = delta(1, 2, { bootme: true });
    const d3 = delta(2, 3);
    const cmd = ubuntuCommand([f1, d2, d3], { deviceKeyring: true }).split("\n");
    expect(cmd).toEqual([
      "load_keyring image-master.tar.xz image-master.tar.xz.asc",
      "load_keyring image-signing.tar.xz image-signing.tar.xz.asc",
      "load_keyring device-signing.tar.xz device-signing.tar.xz.asc",
      "format system",
      "mount system",
      "update z.tar.xz z.tar.xz.asc",
      "update a.tar.xz a.tar.xz.asc",
      "update b.tar.xz b.tar.xz.asc",
      `update ${d2.files[0].path.slice(6)} ${d2.files[0].path.slice(6)}.asc`,
      "unmount system",
      "",
    ]);
    expect(ubuntuCommand([d3], { deviceKeyring: false })).not.toContain("format system");
  });
});
