import { execFileSync } from "node:child_process";
import {
  createReadStream,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  linkSync,
  writeFileSync,
  utimesSync,
  chownSync,
} from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readTar, GnuTarWriter, type TarHeader } from "../../src/archive/tar/index.js";
import { ArchiveError } from "../../src/errors.js";
import {
  headerMagics,
  listTarWithPython,
  tempDir,
  writeTarWithPython,
  writeTarWithWriter,
  type FixtureEntry,
} from "../helpers/tar-fixtures.js";

async function readAll(path: string): Promise<{ header: TarHeader; content: string }[]> {
  const out: { header: TarHeader; content: string }[] = [];
  for await (const { header, body } of readTar(createReadStream(path))) {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    out.push({ header, content: Buffer.concat(chunks).toString("utf8") });
  }
  return out;
}

const LONG_DIR = "deep/" + "d".repeat(90) + "/" + "é".repeat(40); // > 100 bytes, UTF-8
const LONG_FILE = `${LONG_DIR}/file-名前.txt`;
const LONG_TARGET = "/opt/" + "t".repeat(140);

const ENTRIES: FixtureEntry[] = [
  { name: "deep", type: "directory", mode: 0o755, mtime: 1_500_000_000 },
  { name: "deep/" + "d".repeat(90), type: "directory", mode: 0o700, uid: 7, gid: 8, mtime: 1_500_000_001 },
  { name: LONG_DIR, type: "directory", mode: 0o755, mtime: 1_500_000_002 },
  {
    name: LONG_FILE,
    content: "long name content\n",
    mode: 0o640,
    uid: 1000,
    gid: 1001,
    uname: "alice",
    gname: "staff",
    mtime: 1_600_000_123,
  },
  { name: "deep/hard", type: "link", linkname: LONG_FILE, uid: 1000, gid: 1001 },
  { name: "deep/sym", type: "symlink", linkname: LONG_TARGET, mode: 0o777, uid: 5, gid: 6, mtime: 1_400_000_000 },
  { name: "deep/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
  { name: "deep/sda1", type: "block-device", devmajor: 8, devminor: 1, mode: 0o660, gid: 6 },
  { name: "deep/pipe", type: "fifo", mode: 0o600 },
  { name: "deep/exec", content: "#!/bin/sh\n", mode: 0o4755, mtime: 1_000 },
  { name: "deep/bigid", content: "x", uid: 3_000_000, gid: 2_097_152 }, // base-256 uid/gid
  { name: "deep/中文中文中文", content: "unicode" },
];

describe("GnuTarWriter", () => {
  it("writes GNU headers (no pax) that GNU tar lists exactly", async () => {
    const dir = tempDir();
    const tar = await writeTarWithWriter(join(dir, "a.tar"), ENTRIES);
    const listing = execFileSync("tar", ["--numeric-owner", "-tvf", tar], { encoding: "utf8" }).trim().split("\n");
    expect(listing).toHaveLength(ENTRIES.length);
    expect(listing[0]).toMatch(/^drwxr-xr-x 0\/0 +0 2017-07-14 \d\d:\d\d deep\/$/);
    expect(listing[3]).toMatch(new RegExp(`^-rw-r----- 1000/1001 +18 .* ${LONG_FILE}$`));
    expect(listing[4]).toMatch(new RegExp(`^hrw-r--r-- 1000/1001 +0 .* deep/hard link to ${LONG_FILE}$`));
    expect(listing[5]).toMatch(new RegExp(`^lrwxrwxrwx 5/6 +0 .* deep/sym -> ${LONG_TARGET}$`));
    expect(listing[6]).toMatch(/^crw-rw-rw- 0\/0 +1,3 .* deep\/null$/);
    expect(listing[7]).toMatch(/^brw-rw---- 0\/6 +8,1 .* deep\/sda1$/);
    expect(listing[8]).toMatch(/^prw------- 0\/0 +0 .* deep\/pipe$/);
    expect(listing[9]).toMatch(/^-rwsr-xr-x 0\/0 +10 1970-01-01 \d\d:\d\d deep\/exec$/);
    expect(listing[10]).toMatch(/^-rw-r--r-- 3000000\/2097152 +1 /);
    expect(listing[11]).toMatch(/ deep\/中文中文中文$/);
    // Every header block carries the GNU magic; long names travel in 'L'/'K' records.
    const magics = headerMagics(tar);
    expect(magics.every((m) => m.startsWith("7573746172202000:"))).toBe(true);
    expect(magics.map((m) => m.slice(-1))).toEqual(expect.arrayContaining(["L", "K"]));
    expect(magics.some((m) => m.endsWith(":x") || m.endsWith(":g"))).toBe(false);
  });

  it("round-trips every field through Python's tarfile", async () => {
    const dir = tempDir();
    const tar = await writeTarWithWriter(join(dir, "a.tar"), ENTRIES);
    const members = listTarWithPython(tar);
    expect(members.map((m) => m.name)).toEqual(ENTRIES.map((e) => e.name));
    const file = members[3];
    expect(file).toMatchObject({
      type: "0",
      mode: 0o640,
      uid: 1000,
      gid: 1001,
      uname: "alice",
      gname: "staff",
      mtime: 1_600_000_123,
      content: "long name content\n",
    });
    expect(members[4]).toMatchObject({ type: "1", linkname: LONG_FILE });
    expect(members[5]).toMatchObject({ type: "2", linkname: LONG_TARGET, mtime: 1_400_000_000 });
    expect(members[6]).toMatchObject({ type: "3", devmajor: 1, devminor: 3 });
    expect(members[7]).toMatchObject({ type: "4", devmajor: 8, devminor: 1 });
    expect(members[8]).toMatchObject({ type: "6" });
    expect(members[9]).toMatchObject({ mode: 0o4755, mtime: 1000 });
    expect(members[10]).toMatchObject({ uid: 3_000_000, gid: 2_097_152 });
  });

  it("extracts with GNU tar and with busybox tar to the same files, devices and links", async () => {
    const dir = tempDir();
    const tar = await writeTarWithWriter(join(dir, "a.tar"), ENTRIES);
    for (const cmd of [["tar"], ["busybox", "tar"]]) {
      const root = join(dir, cmd.join("-"));
      mkdirSync(root);
      execFileSync(cmd[0], [...cmd.slice(1), "--numeric-owner", "-xf", tar, "-C", root]);
      const f = lstatSync(join(root, LONG_FILE));
      expect(readFileSync(join(root, LONG_FILE), "utf8")).toBe("long name content\n");
      expect([f.mode & 0o7777, f.uid, f.gid, f.mtimeMs / 1000, f.nlink]).toEqual([0o640, 1000, 1001, 1_600_000_123, 2]);
      expect(lstatSync(join(root, "deep/hard")).ino).toBe(f.ino);
      expect(readlinkSync(join(root, "deep/sym"))).toBe(LONG_TARGET);
      const nul = lstatSync(join(root, "deep/null"));
      expect([nul.isCharacterDevice(), nul.rdev]).toEqual([true, 0x103]);
      expect(lstatSync(join(root, "deep/sda1")).isBlockDevice()).toBe(true);
      expect(lstatSync(join(root, "deep/pipe")).isFIFO()).toBe(true);
      expect(lstatSync(join(root, "deep/bigid")).uid).toBe(3_000_000);
    }
  });

  it("keeps the type character of regular files ('0' vs NUL)", async () => {
    const dir = tempDir();
    const tar = await writeTarWithWriter(join(dir, "a.tar"), [
      { name: "zero", content: "a", typeflag: "0" },
      { name: "nul", content: "b", typeflag: "\0" },
    ]);
    expect(listTarWithPython(tar).map((m) => m.type)).toEqual(["0", "\0"]);
  });

  it("refuses content whose length differs from the header size", async () => {
    const w = new GnuTarWriter(new Writable({ write: (_c, _e, cb) => cb() }));
    const h: TarHeader = { name: "f", type: "file", mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: 0, size: 4 };
    await expect(w.add(h, Buffer.from("abc"))).rejects.toThrow(/Cannot write tar member 'f': header size 4 but content has 3 bytes/);
    await expect(w.add(h, Readable.from([Buffer.from("abcde")]))).rejects.toThrow(ArchiveError);
  });

  it("honours backpressure and ends the output with a full 10240-byte record", async () => {
    const chunks: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 16,
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        setImmediate(cb);
      },
    });
    const w = new GnuTarWriter(slow);
    const big = Buffer.alloc(300_000, 7);
    await w.add(
      { name: "big", type: "file", mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: 0, size: big.length },
      Readable.from([big.subarray(0, 100_000), big.subarray(100_000)]),
    );
    await w.finish();
    const total = Buffer.concat(chunks);
    expect(total.length % 10240).toBe(0);
    expect(total.length).toBe(w.bytesWritten);
    expect(total.subarray(512, 512 + big.length).equals(big)).toBe(true);
  });
});

describe("readTar", () => {
  it("reads what GNU tar writes from a real tree (long names, links, devices, fifo)", async () => {
    const dir = tempDir();
    const src = join(dir, "src");
    mkdirSync(join(src, LONG_DIR), { recursive: true });
    writeFileSync(join(src, LONG_FILE), "hello");
    chownSync(join(src, LONG_FILE), 1234, 5678);
    utimesSync(join(src, LONG_FILE), 1_234_567_890, 1_234_567_890);
    linkSync(join(src, LONG_FILE), join(src, "deep/hard"));
    symlinkSync(LONG_TARGET, join(src, "deep/sym"));
    execFileSync("mknod", [join(src, "deep/null"), "c", "1", "3"]);
    execFileSync("mkfifo", [join(src, "deep/pipe")]);
    const tar = join(dir, "gnu.tar");
    execFileSync("tar", ["--format=gnu", "--sort=name", "-cf", tar, "-C", src, "deep"]);
    const byName = new Map((await readAll(tar)).map((e) => [e.header.name, e]));
    expect(byName.get("deep")!.header.type).toBe("directory"); // no trailing "/"
    expect(byName.get(LONG_DIR)!.header.type).toBe("directory");
    expect(byName.get(LONG_FILE)).toMatchObject({
      content: "hello",
      header: { type: "file", typeflag: "0", uid: 1234, gid: 5678, mtime: 1_234_567_890, size: 5 },
    });
    expect(byName.get("deep/hard")!.header).toMatchObject({ type: "link", linkname: LONG_FILE, size: 0 });
    expect(byName.get("deep/sym")!.header).toMatchObject({ type: "symlink", linkname: LONG_TARGET });
    expect(byName.get("deep/null")!.header).toMatchObject({ type: "character-device", devmajor: 1, devminor: 3 });
    expect(byName.get("deep/pipe")!.header.type).toBe("fifo");
  });

  it("merges pax and ustar-prefix names like Python's tarfile (§6.1)", async () => {
    const dir = tempDir();
    for (const format of ["pax", "ustar"] as const) {
      const name = format === "pax" ? LONG_FILE : "p/" + "q".repeat(120) + "/f"; // ustar: prefix field
      const tar = writeTarWithPython(
        join(dir, `${format}.tar`),
        [
          { name, content: "x", uid: 9, mtime: 77 },
          { name: "dir", type: "directory" },
          // ustar cannot hold a link name over 100 bytes: only pax links to the long name.
          { name: "h", type: "link", linkname: format === "pax" ? name : "dir" },
        ],
        format,
      );
      const entries = await readAll(tar);
      expect(entries.map((e) => e.header.name)).toEqual([name, "dir", "h"]);
      expect(entries[0].header).toMatchObject({ uid: 9, mtime: 77, size: 1 });
      expect(entries[2].header.linkname).toBe(format === "pax" ? name : "dir");
    }
  });

  it("reads an old-style NUL-type entry named 'x/' as a directory and keeps NUL-type files apart", async () => {
    const dir = tempDir();
    const tar = writeTarWithPython(join(dir, "old.tar"), [{ name: "f", content: "1", typeflag: "\0" }], "gnu");
    // Python writes NUL-type members only for files; forge an old-style directory by hand.
    const raw = readFileSync(tar);
    const block = Buffer.from(raw.subarray(0, 512));
    block.fill(0, 0, 100).write("olddir/", 0, "latin1");
    block.write("00000000000\0", 124, "latin1"); // size 0
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of block) sum += b;
    block.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "latin1");
    writeFileSync(tar, Buffer.concat([block, raw]));
    const entries = await readAll(tar);
    expect(entries.map((e) => [e.header.name, e.header.type, e.header.typeflag])).toEqual([
      ["olddir", "directory", "\0"],
      ["f", "file", "\0"],
    ]);
  });

  it("skips bodies the consumer leaves unread", async () => {
    const dir = tempDir();
    const big = "z".repeat(200_000);
    const tar = await writeTarWithWriter(join(dir, "a.tar"), [
      { name: "a", content: big },
      { name: "b", content: "bee" },
    ]);
    const names: string[] = [];
    let last = "";
    for await (const { header, body } of readTar(createReadStream(tar, { highWaterMark: 1000 }))) {
      names.push(header.name);
      if (header.name === "b") for await (const c of body) last += (c as Buffer).toString();
    }
    expect(names).toEqual(["a", "b"]);
    expect(last).toBe("bee");
  });

  it("reports a truncated archive and a corrupt header as ArchiveError", async () => {
    const dir = tempDir();
    const tar = await writeTarWithWriter(join(dir, "a.tar"), [{ name: "a", content: "q".repeat(5000) }]);
    const raw = readFileSync(tar);
    writeFileSync(join(dir, "cut.tar"), raw.subarray(0, 2048));
    await expect(readAll(join(dir, "cut.tar"))).rejects.toThrow(/Cannot read tar archive: unexpected end of data in 'a'/);
    const bad = Buffer.from(raw);
    bad[10] = 0x41;
    writeFileSync(join(dir, "bad.tar"), bad);
    await expect(readAll(join(dir, "bad.tar"))).rejects.toThrow(/Cannot read tar archive: bad header checksum at byte 0/);
  });
});
