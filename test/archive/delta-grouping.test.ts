/**
 * Similar files written together (plan.ts): a library is pulled forward to the program of
 * its stem group, so what the new image holds between them is held (in memory, or spilled
 * when big) until its turn, and the delta still applies exactly with the recovery's tars. On real data this is what brings
 * 16 MiB xz blocks within 2 % of one block (README, "Delta size").
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { plannedBlocks } from "../../src/archive/diff/build.js";
import { makeDelta } from "../../src/archive/diff/index.js";
import { applyCheck } from "../helpers/apply-delta.js";
import { tempDir, writeTarWithWriter, xzFile, type FixtureEntry } from "../helpers/tar-fixtures.js";

const T = 1_600_000_000;
const NOW = new Date(1_700_000_000_000);
const file = (name: string, content: string | Buffer, extra: Partial<FixtureEntry> = {}): FixtureEntry => ({
  name,
  content,
  mtime: T,
  ...extra,
});

/** Pseudo-random bytes (incompressible) so sizes decide memory versus spill. */
function noise(seed: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let off = 0, n = 0; off < bytes; n++) off += createHash("sha256").update(`${seed}${n}`).digest().copy(out, off);
  return out;
}

describe("delta members grouped by name stem", () => {
  it("pulls a library to its program, holds what came between (spilled when big), and applies exactly with GNU tar and busybox", async () => {
    const dir = tempDir("si-grouping-");
    const between = Array.from({ length: 20 }, (_, i) => file(`system/usr/share/f${i}`, noise(`between${i}`, 50_000)));
    const oldEntries = [
      file("system/usr/bin/perl", noise("perl1", 6 << 20), { mode: 0o755 }),
      file("system/usr/bin/perl5.36", "", { type: "link", linkname: "system/usr/bin/perl" }),
      file("system/usr/bin/re.so", noise("re1", 100_000)),
      ...between,
      file("system/usr/lib/libperl.so.5.36", noise("libperl1", 1 << 20)),
      file("system/usr/lib/re.so", noise("re2", 100_000)),
    ];
    const newEntries = [
      file("system/usr/bin/perl", noise("perl2", 6 << 20), { mode: 0o755 }),
      file("system/usr/bin/perl5.36", "", { type: "link", linkname: "system/usr/bin/perl" }),
      file("system/usr/bin/re.so", noise("re3", 100_000)),
      // f1 is bigger than the memory budget of one held member: it is spilled.
      ...between.map((e, i) => (i % 2 ? file(e.name, noise(`changed${i}`, i === 1 ? 5 << 20 : 50_000)) : e)),
      file("system/usr/lib/libperl.so.5.36", noise("libperl2", 1 << 20)),
      file("system/usr/lib/re.so", noise("re4", 100_000)),
    ];
    const oldTar = xzFile(await writeTarWithWriter(join(dir, "old.tar"), oldEntries));
    const newTar = xzFile(await writeTarWithWriter(join(dir, "new.tar"), newEntries));
    const out = join(dir, "delta.tar.xz");
    await makeDelta(oldTar, newTar, out, { xzLevel: 0, now: NOW });

    const names = execFileSync("sh", ["-c", `xz -dc '${out}' | tar -t`], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
    const changedBetween = between.filter((_, i) => i % 2).map((e) => e.name);
    expect(names).toEqual([
      "removed",
      // libperl joins perl, lib/re.so joins bin/re.so; the hard link keeps its place.
      "system/usr/bin/perl",
      "system/usr/lib/libperl.so.5.36",
      "system/usr/bin/perl5.36",
      "system/usr/bin/re.so",
      "system/usr/lib/re.so",
      ...changedBetween,
    ]);
    expect(applyCheck(oldTar, newTar, out)).toEqual([]);
    expect(applyCheck(oldTar, newTar, out, { tar: ["busybox", "tar"] })).toEqual([]);
    // Spill files and their directory are gone: only the inputs and the delta remain.
    expect(readdirSync(dirname(out)).sort()).toEqual(["delta.tar.xz", "new.tar.xz", "old.tar.xz"]);
  }, 300_000);
});

describe("xz blocks of a planned delta", () => {
  const MiB = 1 << 20;
  it("are a multiple of the cores in number, near the configured size, with the configured dictionary", () => {
    // 77 MiB in 16 MiB blocks would be 5 blocks (the fifth alone on one core): 4 of 19.25 MiB.
    expect(plannedBlocks(77 * MiB, 16 * MiB, 2, 16 * MiB)).toEqual({ blockSize: 19.25 * MiB, dictSize: 16 * MiB });
    expect(plannedBlocks(100 * MiB, 16 * MiB, 2, 16 * MiB)).toEqual({ blockSize: 16.6875 * MiB, dictSize: 16 * MiB }); // 6 blocks
    expect(plannedBlocks(20 * MiB, 16 * MiB, 2, 16 * MiB)).toEqual({ blockSize: 10 * MiB, dictSize: 16 * MiB }); // both cores
    // Up to one block: the fixed block, as a one-pass delta has it (the same bytes either way).
    expect(plannedBlocks(5 * MiB, 16 * MiB, 2, 16 * MiB)).toEqual({ blockSize: 16 * MiB, dictSize: 16 * MiB });
  });

  it("get a dictionary no larger than delta_xz_dict_mib (default 4 MiB), nor than a block needs", () => {
    expect(plannedBlocks(77 * MiB, 16 * MiB, 2)).toEqual({ blockSize: 19.25 * MiB, dictSize: 4 * MiB });
    expect(plannedBlocks(77 * MiB, 16 * MiB, 2, 8 * MiB)).toEqual({ blockSize: 19.25 * MiB, dictSize: 8 * MiB });
    expect(plannedBlocks(0.5 * MiB, 1 * MiB, 2)).toEqual({ blockSize: 1 * MiB, dictSize: 1 * MiB });
  });
});
