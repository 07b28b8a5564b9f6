import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArchiveError } from "../../src/errors.js";
import { bootImageId, buildBootImage, parseBootImage } from "../../src/archive/bootimg.js";
import { buildCpio, normalName, parseCpio, S_IFLNK, S_IFMT } from "../../src/archive/cpio.js";
import { compressBuffer, decompressBuffer, guessCompression } from "../../src/archive/compression.js";
import { bytes, cleanup, cpioOf, makeRamdisk, makeRamdiskTree, mkbootimg, tmp, unpackBootimg } from "./bootimg-fixtures.js";

afterAll(cleanup);

const kernel = bytes(10_001, 11);
const ramdisk = makeRamdisk("etc", "gzip");

describe("parseBootImage / buildBootImage on mkbootimg output", () => {
  const cases = [];
  for (const headerVersion of [0, 1, 2] as const) {
    for (const pageSize of [2048, 4096]) {
      for (const withSecond of [false, true]) cases.push({ v: String(headerVersion), headerVersion, pageSize, withSecond });
    }
  }
  it.each(cases)("header v$v, page $pageSize, second stage $withSecond", ({ headerVersion, pageSize, withSecond }) => {
    const second = withSecond ? bytes(333, 3) : undefined;
    const recoveryDtbo = headerVersion >= 1 && withSecond ? bytes(1500, 4) : undefined;
    const dtb = headerVersion === 2 ? bytes(2100, 5) : undefined;
    const cmdline = `console=ttyHSL0 ${"x".repeat(600)}`; // spills into extra_cmdline
    const made = mkbootimg(kernel, ramdisk, { headerVersion, pageSize, second, recoveryDtbo, dtb, cmdline, board: "krillin" });

    const img = parseBootImage(made.image, "boot.img");
    expect(img.version).toBe(headerVersion);
    expect(img.pageSize).toBe(pageSize);
    expect(img.kernelAddr).toBe(0x80008000);
    expect(img.ramdiskAddr).toBe(0x81000000);
    expect(img.secondAddr).toBe(withSecond ? 0x80f00000 : 0);
    expect(img.tagsAddr).toBe(0x80000100);
    expect(img.osVersion).toBe((((5 << 14) | (1 << 7)) << 11) | ((16 << 4) | 3));
    expect(img.name).toBe("krillin");
    expect(img.cmdline + img.extraCmdline).toBe(cmdline);
    expect(img.kernel.equals(kernel)).toBe(true);
    expect(img.ramdisk.equals(ramdisk)).toBe(true);
    expect(img.second.equals(second ?? Buffer.alloc(0))).toBe(true);
    expect(img.recoveryDtbo.equals(recoveryDtbo ?? Buffer.alloc(0))).toBe(true);
    expect(img.dtb.equals(dtb ?? Buffer.alloc(0))).toBe(true);
    if (headerVersion === 1) expect(img.headerSize).toBe(1648);
    if (headerVersion === 2) {
      expect(img.headerSize).toBe(1660);
      expect(img.dtbAddr).toBe(0x81f00000n);
    }
    expect(img.tail.length).toBe(0);
    // The id is mkbootimg's, and ours is computed the same way.
    expect("0x" + img.id.toString("hex")).toBe(made.id);
    expect(bootImageId(img).equals(img.id)).toBe(true);
    // The parts are where AOSP's own unpacker finds them.
    const unpacked = unpackBootimg(made.image).parts;
    expect(unpacked.kernel.equals(img.kernel)).toBe(true);
    expect(unpacked.ramdisk.equals(img.ramdisk)).toBe(true);
    // Rebuilding without changes gives the same bytes.
    expect(buildBootImage(img).equals(made.image)).toBe(true);
  });

  it("rebuilds a changed ramdisk exactly as mkbootimg would", () => {
    const made = mkbootimg(kernel, ramdisk, {
      headerVersion: 2,
      pageSize: 4096,
      second: bytes(10, 9),
      recoveryDtbo: bytes(5000, 8),
      dtb: bytes(64, 6),
    });
    const other = makeRamdisk("usr", "xz");
    const rebuilt = buildBootImage({ ...parseBootImage(made.image, "boot.img"), ramdisk: other });
    const expected = mkbootimg(kernel, other, {
      headerVersion: 2,
      pageSize: 4096,
      second: bytes(10, 9),
      recoveryDtbo: bytes(5000, 8),
      dtb: bytes(64, 6),
    });
    expect(rebuilt.equals(expected.image)).toBe(true);
  });

  it("reads images made by abootimg, whose id is left zero", () => {
    const dir = tmp();
    writeFileSync(join(dir, "zImage"), kernel);
    writeFileSync(join(dir, "initrd.img"), ramdisk);
    writeFileSync(
      join(dir, "bootimg.cfg"),
      "pagesize = 0x800\nkerneladdr = 0x10008000\nramdiskaddr = 0x11000000\ntagsaddr = 0x10000100\nname = abootimg\ncmdline = quiet\n",
    );
    execFileSync("abootimg", ["--create", "boot.img", "-f", "bootimg.cfg", "-k", "zImage", "-r", "initrd.img"], { cwd: dir });
    const original = readFileSync(join(dir, "boot.img"));
    const img = parseBootImage(original, "boot.img");
    expect([img.version, img.pageSize, img.name, img.cmdline, img.kernelAddr]).toEqual([0, 2048, "abootimg", "quiet", 0x10008000]);
    expect(img.ramdisk.equals(ramdisk)).toBe(true);
    expect(img.id.equals(Buffer.alloc(32))).toBe(true);
    // A rebuild writes the real id: that is the only difference.
    const rebuilt = buildBootImage(img);
    expect(rebuilt.length).toBe(original.length);
    expect(rebuilt.subarray(576, 608).equals(bootImageId(img))).toBe(true);
    expect(
      Buffer.concat([rebuilt.subarray(0, 576), rebuilt.subarray(608)]).equals(
        Buffer.concat([original.subarray(0, 576), original.subarray(608)]),
      ),
    ).toBe(true);
  });

  it("keeps bytes after the last section and a CAF QCDT device tree in place", () => {
    const made = mkbootimg(kernel, ramdisk, { pageSize: 2048, second: bytes(100, 2) }).image;
    const dt = Buffer.concat([Buffer.from("QCDT"), bytes(3000, 12)]);
    const qcdt = Buffer.concat([made, dt, Buffer.alloc(2048 - (dt.length % 2048)), Buffer.from("SEANDROIDENFORCE")]);
    qcdt.writeUInt32LE(dt.length, 40); // CAF mkbootimg: dt_size in the header_version word
    const img = parseBootImage(qcdt, "boot.img");
    expect(img.qcomDt!.equals(dt)).toBe(true);
    expect(img.tail.toString()).toBe("SEANDROIDENFORCE");
    const smaller = buildBootImage({ ...img, ramdisk: Buffer.from("tiny") });
    const again = parseBootImage(smaller, "rebuilt");
    expect(again.qcomDt!.equals(dt)).toBe(true);
    expect(again.tail.toString()).toBe("SEANDROIDENFORCE");
    expect(again.headerVersionField).toBe(dt.length);
  });
});

describe("malformed boot images", () => {
  const good = mkbootimg(kernel, ramdisk, { headerVersion: 2, pageSize: 2048, dtb: bytes(100, 1) }).image;
  const bad = (mutate: (b: Buffer) => Buffer) => () => parseBootImage(mutate(Buffer.from(good)), "device.tar.xz: partitions/recovery.img");
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ["bad magic", (b) => (b.write("ANDROID?", 0), b), /bad magic 'ANDROID\?'/],
    ["empty file", () => Buffer.alloc(0), /bad magic ''/],
    ["truncated header", (b) => b.subarray(0, 1000), /truncated header \(1000 bytes/],
    ["truncated v2 header", (b) => b.subarray(0, 1650), /truncated v2 header/],
    [
      "truncated ramdisk",
      (b) => b.subarray(0, 2048 + 10_240 + 100),
      /ramdisk \(\d+ bytes at offset 12288\) extends beyond the end of the file \(12388 bytes\)/,
    ],
    [
      "kernel size beyond the file",
      (b) => (b.writeUInt32LE(0x7fffffff, 8), b),
      /kernel \(2147483647 bytes at offset 2048\) extends beyond/,
    ],
    ["dtb size beyond the file", (b) => (b.writeUInt32LE(1 << 24, 1648), b), /DTB \(16777216 bytes/],
    ["bad page size", (b) => (b.writeUInt32LE(3000, 36), b), /bad page size 3000/],
    ["header v3", (b) => (b.writeUInt32LE(3, 40), b), /header version 3 is not supported/],
  ];
  it.each(cases)("%s", (_name, mutate, message) => {
    expect(bad(mutate)).toThrow(ArchiveError);
    expect(bad(mutate)).toThrow(message);
    expect(bad(mutate)).toThrow(/^Cannot parse boot image device\.tar\.xz: partitions\/recovery\.img: /);
  });
});

describe("cpio newc", () => {
  it("reads GNU cpio archives and writes them back byte for byte", () => {
    const dir = tmp();
    makeRamdiskTree(dir, "etc");
    for (const format of ["newc", "crc"] as const) {
      const raw = cpioOf(dir, format);
      const archive = parseCpio(raw, "initrd");
      expect(archive.magic).toBe(format === "newc" ? "070701" : "070702");
      expect(buildCpio(archive).equals(raw)).toBe(true);
      const byName = new Map(archive.entries.map((e) => [normalName(e.name), e]));
      const link = byName.get("sbin/adbd")!;
      expect(link.mode & S_IFMT).toBe(S_IFLNK);
      expect(link.data.toString()).toBe("recovery");
      expect(byName.get("init")!.mode & 0o7777).toBe(0o750);
      expect(byName.get("tmp")!.mode & 0o7777).toBe(0o1777);
      expect([byName.get("res/keys/owned")!.uid, byName.get("res/keys/owned")!.gid]).toEqual([1000, 1001]);
      expect(byName.get("init")!.mtime).toBe(1_400_000_000);
      expect(byName.get("res/a")!.nlink).toBe(2);
    }
  });

  it("writes archives GNU cpio extracts", () => {
    const dir = tmp();
    makeRamdiskTree(dir, "none");
    const archive = parseCpio(cpioOf(dir), "initrd");
    archive.entries = archive.entries.filter((e) => normalName(e.name) !== "default.prop");
    archive.entries.find((e) => e.name === "init")!.data = Buffer.from("#!/bin/sh\nnew\n");
    const built = buildCpio(archive);
    // Padded to GNU cpio's 512-byte blocks again, with no more than one block of padding.
    expect(built.length % 512).toBe(0);
    expect(built.lastIndexOf("TRAILER!!!")).toBeGreaterThan(built.length - 512);
    const out = tmp();
    execFileSync("cpio", ["--quiet", "-idm"], { cwd: out, input: built });
    expect(readFileSync(join(out, "init"), "utf8")).toBe("#!/bin/sh\nnew\n");
    expect(() => readFileSync(join(out, "default.prop"))).toThrow();
    expect(readFileSync(join(out, "res/b"), "utf8")).toBe("hard\n");
  });

  it("rejects what is not a newc archive", () => {
    expect(() => parseCpio(Buffer.from("070707" + "0".repeat(200)), "initrd.img")).toThrow(
      /Cannot parse cpio archive initrd.img: bad magic '070707'/,
    );
    const raw = cpioOf(
      (() => {
        const d = tmp();
        makeRamdiskTree(d, "none");
        return d;
      })(),
    );
    expect(() => parseCpio(raw.subarray(0, 300), "initrd.img")).toThrow(ArchiveError);
  });
});

describe("compression", () => {
  it("guesses like guess_file_compression (§8.3)", () => {
    expect(guessCompression(Buffer.from("hello"))).toBe(null);
    expect(guessCompression(execFileSync("xz", ["-c"], { input: "x" }))).toBe("xz");
    expect(guessCompression(execFileSync("gzip", ["-c"], { input: "x" }))).toBe("gzip");
    expect(guessCompression(Buffer.from([0x1f, 0x8b]))).toBe(null);
  });

  it("round-trips gzip, xz (keeping the check type) and raw", async () => {
    const data = bytes(50_000, 5);
    for (const how of ["gzip", "xz", null] as const) {
      const packed = await compressBuffer(data, how, "test", { xzCheck: "crc32" });
      const back = await decompressBuffer(packed, "test");
      expect(back.compression).toBe(how);
      expect(back.data.equals(data)).toBe(true);
      if (how === "xz") {
        expect(back.xzCheck).toBe("crc32");
        expect(execFileSync("xz", ["-dc"], { input: packed }).equals(data)).toBe(true);
      }
      if (how === "gzip") expect(execFileSync("gzip", ["-dc"], { input: packed }).equals(data)).toBe(true);
    }
    await expect(decompressBuffer(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 1, 2]), "initrd.img")).rejects.toThrow(
      /Cannot decompress initrd.img: /,
    );
  });

  it("lets the event loop run while xz works (a server repacking a recovery keeps serving)", async () => {
    const data = bytes(1 << 20, 9);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const packed = await compressBuffer(data, "xz", "ramdisk");
      const afterCompress = ticks;
      expect((await decompressBuffer(packed, "ramdisk")).data.equals(data)).toBe(true);
      // spawnSync would have held the loop: no timer could fire before each call returned.
      expect(afterCompress).toBeGreaterThan(0);
      expect(ticks).toBeGreaterThan(afterCompress);
    } finally {
      clearInterval(timer);
    }
  });
});
