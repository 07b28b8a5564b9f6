/**
 * The one-pass delta (one-pass.ts) and its assembly into one .xz stream (xz-container.ts):
 * the file is read by every reader a device or client uses, `removed` comes first, the
 * result is byte for byte the two-pass delta, and members that reach the new reader before
 * the old scan reaches their path are still classified right.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { diffImages, makeDelta, scanImage, writeDeltaTar } from "../../src/archive/diff/index.js";
import { HELD_MEMORY } from "../../src/archive/diff/one-pass.js";
import { encodeIndex, joinXzStreams, parseIndex, readStreamLayout } from "../../src/io/xz-container.js";
import { applyCheck } from "../helpers/apply-delta.js";
import { listTarWithPython, tempDir, writeTarWithWriter, xzFile, type FixtureEntry } from "../helpers/tar-fixtures.js";

const T = 1_600_000_000;
const NOW = new Date(1_700_000_000_000);
const file = (name: string, content: string | Buffer, extra: Partial<FixtureEntry> = {}): FixtureEntry => ({
  name,
  content,
  mtime: T,
  ...extra,
});

/** Compressible but not trivially so: numbered text lines mixed with pseudo-random bytes. */
function text(seed: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let state = createHash("sha256").update(seed).digest().readUInt32LE(0);
  let pos = 0;
  for (let n = 0; pos < bytes; n++) {
    pos += out.write(`${seed} line ${n} `, pos, "latin1");
    for (let k = 0; k < 8 && pos < bytes; k++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      out[pos++] = 97 + (state >>> 27);
    }
    if (pos < bytes) out[pos++] = 10;
  }
  return out;
}

/** The two-pass delta's uncompressed tar, for byte comparison. */
async function twoPassTar(oldTar: string, newTar: string, out: string, mtime: "content" | "exact" = "content"): Promise<Buffer> {
  const diff = await diffImages(oldTar, newTar, mtime);
  await writeDeltaTar(newTar, diff, createWriteStream(out), NOW);
  return readFileSync(out);
}

const xzDecompress = (f: string) => execFileSync("xz", ["-dc", f], { maxBuffer: 1 << 30 });

describe("one .xz stream from several (xz-container)", () => {
  it("joins the blocks of two files: one stream, same bytes, index rebuilt", async () => {
    const dir = tempDir();
    const a = join(dir, "a");
    const b = join(dir, "b");
    writeFileSync(a, text("a", 100_000));
    writeFileSync(b, text("b", 7 << 20));
    execFileSync("xz", ["-k", "-0", a]);
    execFileSync("xz", ["-k", "-0", "-T2", "--block-size=1MiB", b]);
    const out = join(dir, "joined.xz");
    const w = createWriteStream(out);
    const { uncompressedBytes, blocks } = await joinXzStreams([`${a}.xz`, `${b}.xz`], w);
    w.end();
    await new Promise<void>((r) => w.on("finish", () => r()));
    expect(uncompressedBytes).toBe(100_000 + (7 << 20));
    expect(blocks).toBe(1 + 7);
    expect(xzDecompress(out).equals(Buffer.concat([readFileSync(a), readFileSync(b)]))).toBe(true);
    const robot = execFileSync("xz", ["--robot", "-l", out], { encoding: "utf8" });
    expect(robot).toMatch(/^file\t1\t8\t/m); // one stream, eight blocks
    expect((await readStreamLayout(out)).records).toHaveLength(8);
  });

  it("index encoding round-trips sizes beyond 32 bits", () => {
    const records = [
      { unpaddedSize: 5, uncompressedSize: 2 ** 40 + 3 },
      { unpaddedSize: 123456, uncompressedSize: 127 },
    ];
    expect(parseIndex(encodeIndex(records))).toEqual(records);
  });
});

describe("one-pass delta", () => {
  it("a multi-block delta: removed first, readable by xz, GNU tar, Python and busybox; equal to the two-pass delta", async () => {
    const dir = tempDir("si-onepass-");
    const big = (seed: string) => text(seed, 3 << 20);
    const oldEntries = [file("system/a", big("a")), file("system/b", big("b")), file("system/gone", "x"), file("system/same", big("s"))];
    const newEntries = [
      file("system/a", big("a2")),
      file("system/added", big("n")),
      file("system/b", big("b2")),
      file("system/same", big("s")),
    ];
    const oldTar = xzFile(await writeTarWithWriter(join(dir, "old.tar"), oldEntries));
    const newTar = xzFile(await writeTarWithWriter(join(dir, "new.tar"), newEntries));
    const out = join(dir, "delta.tar.xz");
    // 2 MiB blocks: several blocks from 9 MiB of members (the default is 16 MiB).
    const s = await makeDelta(oldTar, newTar, out, { xzLevel: 0, now: NOW, blockSize: 2 << 20 });
    expect(s.onePass).toBe(true);
    expect([s.changes.added, s.changes.changed, s.changes.deleted]).toEqual([["system/added"], ["system/a", "system/b"], ["system/gone"]]);

    execFileSync("xz", ["-t", out]);
    const robot = execFileSync("xz", ["--robot", "-l", out], { encoding: "utf8" });
    const [, streams, blocks] = robot
      .split("\n")
      .find((l) => l.startsWith("file"))!
      .split("\t");
    expect(streams).toBe("1");
    expect(Number(blocks)).toBeGreaterThanOrEqual(4); // removed + ≥3 blocks of 3 MiB
    expect(
      execFileSync("sh", ["-c", `xz -dc '${out}' | tar -t`], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean),
    ).toEqual(["removed", "system/a", "system/added", "system/b"]);
    const py = listTarWithPython(out);
    expect(py.map((m) => m.name)).toEqual(["removed", "system/a", "system/added", "system/b"]);
    expect(py[0].content).toBe("system/a\nsystem/b\nsystem/gone\n");
    const plain = xzDecompress(out);
    expect(execFileSync("busybox", ["xz", "-dc", out], { maxBuffer: 1 << 30 }).equals(plain)).toBe(true);
    expect(plain.length).toBe(s.uncompressedBytes);
    expect(plain.equals(await twoPassTar(oldTar, newTar, join(dir, "two-pass.tar")))).toBe(true);
    expect(createHash("sha256").update(readFileSync(out)).digest("hex")).toBe(s.sha256);
    expect(applyCheck(oldTar, newTar, out)).toEqual([]);
    expect(applyCheck(oldTar, newTar, out, { tar: ["busybox", "tar"] })).toEqual([]);
  });

  it("new members that arrive before the old scan reaches their path (images in different orders) are classified right", async () => {
    const dir = tempDir("si-onepass-");
    const names = Array.from({ length: 300 }, (_, i) => `system/f${String(i).padStart(3, "0")}`);
    const oldEntries = names.map((n) => file(n, `old ${n}`));
    const newEntries = names
      .map((n, i) => (i % 10 === 0 ? file(n, `new ${n}`) : i % 37 === 0 ? null : file(n, `old ${n}`)))
      .filter((e): e is FixtureEntry => e !== null)
      .concat([file("system/zz-added", "added")]);
    newEntries.reverse(); // the new image lists everything in the opposite order
    const oldTar = await writeTarWithWriter(join(dir, "old.tar"), oldEntries);
    const newTar = await writeTarWithWriter(join(dir, "new.tar"), newEntries);
    const expected = await twoPassTar(oldTar, newTar, join(dir, "two-pass.tar"));
    for (const speculate of [true, false]) {
      const out = join(dir, `delta-${speculate}.tar.xz`);
      const s = await makeDelta(oldTar, newTar, out, { xzLevel: 0, now: NOW, speculate });
      expect(s.changes.changed).toEqual(names.filter((_, i) => i % 10 === 0));
      expect(s.changes.deleted).toEqual(names.filter((_, i) => i % 37 === 0 && i % 10 !== 0));
      expect(s.changes.added).toEqual(["system/zz-added"]);
      expect(xzDecompress(out).equals(expected)).toBe(true);
      expect(applyCheck(oldTar, newTar, out)).toEqual([]);
    }
  });

  it("same order with added and removed paths: decided in one pass (no fallback), hard links after their target", async () => {
    const dir = tempDir("si-onepass-");
    const oldEntries: FixtureEntry[] = [];
    const newEntries: FixtureEntry[] = [];
    for (let i = 0; i < 400; i++) {
      const n = `system/d${i % 7}/f${String(i).padStart(3, "0")}`;
      if (i % 50 !== 7) oldEntries.push(file(n, `content ${i}`));
      if (i % 60 !== 3) newEntries.push(file(n, i % 9 === 0 ? `changed ${i}` : `content ${i}`));
      if (i % 45 === 0) {
        oldEntries.push({ name: `${n}.hl`, type: "link", linkname: n, mtime: T });
        newEntries.push({ name: `${n}.hl`, type: "link", linkname: n, mtime: T });
      }
    }
    const oldTar = xzFile(await writeTarWithWriter(join(dir, "old.tar"), oldEntries));
    const newTar = xzFile(await writeTarWithWriter(join(dir, "new.tar"), newEntries));
    const out = join(dir, "delta.tar.xz");
    const s = await makeDelta(oldTar, newTar, out, { xzLevel: 0, now: NOW });
    expect(s.onePass).toBe(true);
    expect(s.changes.changed).toContain("system/d0/f000.hl"); // target f000 rewritten
    expect(xzDecompress(out).equals(await twoPassTar(oldTar, newTar, join(dir, "two-pass.tar")))).toBe(true);
    expect(applyCheck(oldTar, newTar, out)).toEqual([]);
  });

  it("a held file bigger than the memory cap (same size and mtime, content changed) is spilled and still written", async () => {
    const dir = tempDir("si-onepass-");
    const size = HELD_MEMORY + 4096;
    const a = text("spill", size);
    const b = Buffer.from(a);
    b[size - 10] = b[size - 10] ^ 1; // only the hash can tell
    const oldTar = await writeTarWithWriter(join(dir, "old.tar"), [file("big", a), file("small", "s")]);
    const newTar = await writeTarWithWriter(join(dir, "new.tar"), [file("big", b), file("small", "s")]);
    const out = join(dir, "delta.tar.xz");
    const s = await makeDelta(oldTar, newTar, out, { xzLevel: 0, now: NOW });
    expect(s.changes.changed).toEqual(["big"]);
    const plain = xzDecompress(out);
    expect(plain.equals(await twoPassTar(oldTar, newTar, join(dir, "two-pass.tar")))).toBe(true);
    expect(
      execFileSync("ls", ["-A", dir], { encoding: "utf8" })
        .split("\n")
        .filter((f) => f.startsWith(".")),
    ).toEqual([]); // temporaries removed
  });

  it("falls back to the second pass for a path duplicated in the new image (the last occurrence is shipped)", async () => {
    const dir = tempDir("si-onepass-");
    const oldTar = await writeTarWithWriter(join(dir, "old.tar"), [file("a", "1"), file("b", "b")]);
    const newTar = await writeTarWithWriter(join(dir, "new.tar"), [file("a", "first"), file("b", "b"), file("a", "second")]);
    const out = join(dir, "delta.tar.xz");
    const s = await makeDelta(oldTar, newTar, out, { xzLevel: 0, now: NOW });
    expect(s.onePass).toBe(false);
    expect(listTarWithPython(out).map((m) => [m.name, m.content])).toEqual([
      ["removed", "a\n"],
      ["a", "second"],
    ]);
  });

  it("'content': a file with equal size, mode and owner but a new mtime waits for its digest (dropped if equal, shipped if not)", async () => {
    const dir = tempDir("si-onepass-");
    const names = Array.from({ length: 200 }, (_, i) => `system/f${String(i).padStart(3, "0")}`);
    const oldEntries = names.map((n) => file(n, `content of ${n}`));
    // Every file gets a new mtime; every 7th also new bytes of the same size.
    const newEntries = names.map((n, i) => file(n, i % 7 === 0 ? `CONTENT of ${n}` : `content of ${n}`, { mtime: T + 60 }));
    const oldTar = await writeTarWithWriter(join(dir, "old.tar"), oldEntries);
    const newTar = await writeTarWithWriter(join(dir, "new.tar"), newEntries);
    for (const mtime of ["content", "exact"] as const) {
      for (const speculate of [true, false]) {
        const out = join(dir, `delta-${mtime}-${speculate}.tar.xz`);
        const s = await makeDelta(oldTar, newTar, out, { xzLevel: 0, now: NOW, mtime, speculate });
        expect(s.onePass).toBe(true);
        expect(s.changes.changed).toEqual(mtime === "exact" ? names : names.filter((_, i) => i % 7 === 0));
        expect(xzDecompress(out).equals(await twoPassTar(oldTar, newTar, join(dir, `two-pass-${mtime}.tar`), mtime))).toBe(true);
        expect(applyCheck(oldTar, newTar, out, { mtime })).toEqual([]);
      }
    }
  });

  it("from stored catalogues (both, or the old one alone): the same delta file, byte for byte, as from the images", async () => {
    const dir = tempDir("si-onepass-");
    const big = (seed: string) => text(seed, 600 << 10);
    const oldEntries = [
      file("system/a", big("a")),
      file("system/t", "touched"),
      { name: "system/hl", type: "link" as const, linkname: "system/a", mtime: T },
      file("system/gone", "x"),
      file("system/same", big("s")),
    ];
    const newEntries = [
      file("system/a", big("a2")),
      file("system/t", "touched", { mtime: T + 1 }),
      { name: "system/hl", type: "link" as const, linkname: "system/a", mtime: T },
      file("system/added", big("n")),
      file("system/same", big("s")),
    ];
    const oldTar = xzFile(await writeTarWithWriter(join(dir, "old.tar"), oldEntries));
    const newTar = xzFile(await writeTarWithWriter(join(dir, "new.tar"), newEntries));
    for (const mtime of ["content", "exact"] as const) {
      const ref = join(dir, `images-${mtime}.tar.xz`);
      const s0 = await makeDelta(oldTar, newTar, ref, { xzLevel: 0, now: NOW, mtime });
      expect(s0.source).toBe("images");
      const both = join(dir, `catalogues-${mtime}.tar.xz`);
      const s1 = await makeDelta("/nonexistent/old.tar.xz", newTar, both, {
        xzLevel: 0,
        now: NOW,
        mtime,
        oldCatalogue: scanImage(oldTar),
        newCatalogue: scanImage(newTar),
      });
      expect(s1.source).toBe("catalogues");
      const oldOnly = join(dir, `old-catalogue-${mtime}.tar.xz`);
      const s2 = await makeDelta("/nonexistent/old.tar.xz", newTar, oldOnly, {
        xzLevel: 0,
        now: NOW,
        mtime,
        oldCatalogue: scanImage(oldTar),
      });
      expect([s2.source, s2.onePass]).toEqual(["old-catalogue", true]);
      for (const out of [both, oldOnly]) expect(readFileSync(out).equals(readFileSync(ref)), out).toBe(true);
      expect(s1.changes).toEqual(s0.changes);
      expect(listTarWithPython(both).map((m) => m.name)).toEqual([
        "removed",
        "system/a",
        ...(mtime === "exact" ? ["system/t"] : []),
        "system/hl",
        "system/added",
      ]);
      expect(xzDecompress(both).equals(await twoPassTar(oldTar, newTar, join(dir, `two-pass-${mtime}.tar`), mtime))).toBe(true);
    }
  }, 300_000);
});
