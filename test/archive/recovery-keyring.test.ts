import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArchiveError } from "../../src/errors.js";
import {
  needsVendorHeader,
  reattachRecoveryHeader,
  repackDeviceTarballKeyring,
  stripRecoveryHeader,
  swapRecoveryKeyring,
} from "../../src/archive/recovery-keyring.js";
import {
  abootimgInfo,
  bytes,
  cleanup,
  compress,
  makeRamdisk,
  mkbootimg,
  tmp,
  unpackBootimg,
  type Layout,
  type MkbootimgArgs,
  type RamdiskCompression,
} from "./bootimg-fixtures.js";

afterAll(cleanup);

const kernel = bytes(20_000, 21);
const keyring = { name: "archive-master", tarball: bytes(1234, 99), signature: Buffer.from("-----BEGIN PGP SIGNATURE-----\nnew\n") };

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime?: number;
  content?: string;
}

/** Extracts a ramdisk the way a person would (`gzip -dc | cpio -idm`) and describes every path. */
function extract(ramdisk: Buffer, how: RamdiskCompression): Map<string, Node> {
  const raw =
    how === "gzip"
      ? execFileSync("gzip", ["-dc"], { input: ramdisk })
      : how === "xz"
        ? execFileSync("xz", ["-dc"], { input: ramdisk })
        : ramdisk;
  const dir = tmp("x-");
  execFileSync("cpio", ["--quiet", "-idm"], { cwd: dir, input: raw });
  const out = new Map<string, Node>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, path));
      const node: Node = {
        type: st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "file",
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
      };
      if (st.isFile()) {
        node.mtime = Math.floor(st.mtimeMs / 1000);
        node.content = createHash("sha256")
          .update(readFileSync(join(dir, path)))
          .digest("hex");
      }
      if (st.isSymbolicLink()) node.content = readlinkSync(join(dir, path));
      out.set(path, node);
      if (st.isDirectory()) walk(path);
    }
  };
  walk("");
  return out;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Asserts `after` is `before` with exactly the keyring pair at `dest` new (and `added` dirs). */
function expectOnlyKeyringChanged(before: Map<string, Node>, after: Map<string, Node>, dest: string, added: string[] = []): void {
  const changed = new Set([dest, `${dest}.asc`]);
  for (const [path, node] of before) {
    if (changed.has(path)) continue;
    expect(after.get(path), path).toEqual(node);
  }
  expect([...after.keys()].filter((p) => !before.has(p)).sort()).toEqual([...added, ...[...changed].filter((p) => !before.has(p))].sort());
  expect(after.get(dest)).toMatchObject({ type: "file", mode: 0o644, uid: 0, gid: 0, content: sha(keyring.tarball) });
  expect(after.get(`${dest}.asc`)).toMatchObject({ type: "file", mode: 0o644, uid: 0, gid: 0, content: sha(keyring.signature) });
}

/**
 * The swapped image must be exactly what mkbootimg makes from the same parts with the same
 * arguments (so sizes, alignment and id are right), and abootimg must accept it.
 */
function expectValidImage(swapped: Buffer, args: MkbootimgArgs): Buffer {
  const { parts } = unpackBootimg(swapped);
  const remade = mkbootimg(parts.kernel, parts.ramdisk, args);
  expect(swapped.equals(remade.image)).toBe(true);
  expect("0x" + swapped.subarray(576, 608).toString("hex")).toBe(remade.id);
  const info = abootimgInfo(swapped);
  expect(info).toContain(`ramdisk size      = ${parts.ramdisk.length} bytes`);
  expect(info).toContain(`image size = ${swapped.length} bytes`);
  return parts.ramdisk;
}

describe("swapRecoveryKeyring", () => {
  const cases: { layout: Layout; how: RamdiskCompression; args: MkbootimgArgs; dest: string; added?: string[] }[] = [
    { layout: "etc", how: "gzip", args: { pageSize: 2048 }, dest: "etc/system-image/archive-master.tar.xz" },
    { layout: "usr", how: "gzip", args: { pageSize: 4096, second: bytes(5000, 3) }, dest: "usr/share/system-image/archive-master.tar.xz" },
    {
      layout: "etc",
      how: "xz",
      args: { headerVersion: 1, pageSize: 2048, second: bytes(10, 4), recoveryDtbo: bytes(3000, 5) },
      dest: "etc/system-image/archive-master.tar.xz",
    },
    {
      layout: "usr",
      how: "none",
      args: { headerVersion: 2, pageSize: 4096, dtb: bytes(4097, 6) },
      dest: "usr/share/system-image/archive-master.tar.xz",
    },
    {
      layout: "none",
      how: "gzip",
      args: { pageSize: 2048 },
      dest: "etc/system-image/archive-master.tar.xz",
      added: ["etc", "etc/system-image"],
    },
  ];
  it.each(cases)("$layout keyring, $how ramdisk, $args.pageSize-byte pages", async ({ layout, how, args, dest, added }) => {
    const ramdisk = makeRamdisk(layout, how);
    const original = mkbootimg(kernel, ramdisk, args).image;
    const swapped = await swapRecoveryKeyring(original, keyring);
    const newRamdisk = expectValidImage(swapped, args);
    expect(newRamdisk.equals(ramdisk)).toBe(false);
    if (how === "xz") expect(newRamdisk[7]).toBe(ramdisk[7]); // same check type (CRC32)
    const before = extract(ramdisk, how);
    const after = extract(newRamdisk, how);
    expectOnlyKeyringChanged(before, after, dest, added);
    for (const dir of added ?? []) expect(after.get(dir)).toMatchObject({ type: "dir", mode: 0o755, uid: 0 });
    // Other sections are untouched.
    const parts = unpackBootimg(swapped).parts;
    expect(parts.kernel.equals(kernel)).toBe(true);
    if (args.second) expect(parts.second.equals(args.second)).toBe(true);
    if (args.recoveryDtbo) expect(parts.recovery_dtbo.equals(args.recoveryDtbo)).toBe(true);
    if (args.dtb) expect(parts.dtb.equals(args.dtb)).toBe(true);
  });

  it("keeps a swap idempotent: the same keyring twice gives the same ramdisk content", async () => {
    const original = mkbootimg(kernel, makeRamdisk("etc", "gzip")).image;
    const once = await swapRecoveryKeyring(original, keyring, { mtime: 1_500_000_000 });
    const twice = await swapRecoveryKeyring(once, keyring, { mtime: 1_500_000_000 });
    expect(twice.equals(once)).toBe(true);
  });

  it("strips and puts back a 512-byte MediaTek header (krillin)", async () => {
    const payload = makeRamdisk("etc", "gzip");
    const mtk = Buffer.alloc(512, 0xff);
    mtk.writeUInt32LE(0x58881688, 0);
    mtk.writeUInt32LE(payload.length, 4);
    mtk.fill(0, 8, 40).write("RECOVERY", 8, "latin1");
    const original = mkbootimg(kernel, Buffer.concat([mtk, payload])).image;
    expect(needsVendorHeader("krillin")).toBe(true);
    const swapped = await swapRecoveryKeyring(original, keyring, { vendorHeader: true });
    const ramdisk = expectValidImage(swapped, {});
    const newPayload = ramdisk.subarray(512);
    const expectedHeader = Buffer.from(mtk);
    expectedHeader.writeUInt32LE(newPayload.length, 4); // the header describes its payload
    expect(ramdisk.subarray(0, 512).equals(expectedHeader)).toBe(true);
    expectOnlyKeyringChanged(extract(payload, "gzip"), extract(newPayload, "gzip"), "etc/system-image/archive-master.tar.xz");
    // Without the option the header hides the gzip magic: the ramdisk is not a cpio archive.
    await expect(swapRecoveryKeyring(original, keyring, { label: "krillin.img" })).rejects.toThrow(
      /^Cannot parse cpio archive krillin.img ramdisk \(uncompressed\): bad magic/,
    );
  });

  it("puts back an unknown 512-byte header verbatim", async () => {
    const header = bytes(512, 77);
    const payload = makeRamdisk("usr", "xz");
    const swapped = await swapRecoveryKeyring(mkbootimg(kernel, Buffer.concat([header, payload])).image, keyring, { vendorHeader: true });
    const ramdisk = unpackBootimg(swapped).parts.ramdisk;
    expect(ramdisk.subarray(0, 512).equals(header)).toBe(true);
    expectOnlyKeyringChanged(extract(payload, "xz"), extract(ramdisk.subarray(512), "xz"), "usr/share/system-image/archive-master.tar.xz");
  });

  it("drops zero padding after the image but keeps a vendor trailer", async () => {
    const made = mkbootimg(kernel, makeRamdisk("etc", "gzip")).image;
    const padded = await swapRecoveryKeyring(Buffer.concat([made, Buffer.alloc(1 << 20)]), keyring);
    expectValidImage(padded, {});
    const signed = await swapRecoveryKeyring(Buffer.concat([made, Buffer.from("SEANDROIDENFORCE")]), keyring);
    expect(signed.subarray(-16).toString()).toBe("SEANDROIDENFORCE");
    expectValidImage(signed.subarray(0, -16), {});
  });

  it("names the image and the part in errors", async () => {
    const good = mkbootimg(kernel, makeRamdisk("etc", "gzip")).image;
    await expect(swapRecoveryKeyring(good.subarray(0, 22_628), keyring, { label: "x.tar.xz: partitions/recovery.img" })).rejects.toThrow(
      /^Cannot parse boot image x\.tar\.xz: partitions\/recovery\.img: ramdisk \(\d+ bytes at offset 22528\) extends beyond the end of the file \(22628 bytes\)$/,
    );
    const notCpio = mkbootimg(kernel, compress(Buffer.from("not an archive at all"), "gzip")).image;
    await expect(swapRecoveryKeyring(notCpio, keyring)).rejects.toThrow(ArchiveError);
    await expect(swapRecoveryKeyring(notCpio, keyring)).rejects.toThrow(/^Cannot parse cpio archive recovery\.img ramdisk \(gzip\): /);
    await expect(swapRecoveryKeyring(Buffer.from("ANDROID?"), keyring)).rejects.toThrow(
      /^Cannot parse boot image recovery\.img: bad magic/,
    );
  });
});

describe("recovery header helpers (test_manipulate_recovery_header)", () => {
  it("strips and reattaches 512 bytes", () => {
    const data = bytes(2000, 8);
    const { header, body } = stripRecoveryHeader(data);
    expect(header.equals(data.subarray(0, 512))).toBe(true);
    expect(body.equals(data.subarray(512))).toBe(true);
    expect(reattachRecoveryHeader(header, body).equals(data)).toBe(true);
    expect(() => stripRecoveryHeader(bytes(100, 1), "initrd.img")).toThrow(/Cannot strip recovery header of initrd.img: 100 bytes/);
  });

  it("knows the devices that need it", () => {
    expect(["krillin", "vegetahd", "arale"].every(needsVendorHeader)).toBe(true);
    expect(["mako", "flo", "frieza", "", undefined].some((d) => needsVendorHeader(d))).toBe(false);
  });
});

// --- device tarballs -----------------------------------------------------------------------

/** Python tarfile's view of every member: metadata and a content hash. */
type Member = {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  linkname: string;
  size: number;
  sha: string;
};
function members(tarXz: string): Member[] {
  const script = `
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:xz") as t:
    for m in t:
        f = t.extractfile(m) if m.isfile() else None
        out.append(dict(name=m.name, type=m.type.decode("latin1"), mode=m.mode, uid=m.uid, gid=m.gid, uname=m.uname,
                        gname=m.gname, mtime=m.mtime, linkname=m.linkname, size=m.size,
                        sha=hashlib.sha256(f.read()).hexdigest() if f else ""))
print(json.dumps(out))`;
  return JSON.parse(execFileSync("python3", ["-c", script, tarXz], { maxBuffer: 1 << 26 }).toString()) as Member[];
}

function memberContent(tarXz: string, name: string): Buffer {
  return execFileSync("tar", ["-xJOf", tarXz, name], { maxBuffer: 1 << 28 });
}

const LONG = `system/usr/share/${"very-long-directory-name/".repeat(5)}file-with-a-long-name.txt`;

/** A device tarball made by GNU tar; `recovery` null leaves recovery.img out. */
function deviceTarball(recovery: Buffer | null): string {
  const dir = tmp("dev-");
  const src = join(dir, "src");
  mkdirSync(join(src, "partitions"), { recursive: true });
  mkdirSync(join(src, LONG, ".."), { recursive: true });
  mkdirSync(join(src, "system/lib"), { recursive: true });
  writeFileSync(join(src, "partitions/boot.img"), bytes(70_000, 31));
  if (recovery) writeFileSync(join(src, "partitions/recovery.img"), recovery);
  writeFileSync(join(src, "system/build.prop"), "ro.build=1\n");
  writeFileSync(join(src, LONG), bytes(5000, 32));
  writeFileSync(join(src, "system/lib/libx.so.1"), bytes(20_000, 33));
  symlinkSync("libx.so.1", join(src, "system/lib/libx.so"));
  const out = join(dir, "device-abc.tar.xz");
  const order = [
    "partitions",
    "partitions/boot.img",
    ...(recovery ? ["partitions/recovery.img"] : []),
    "system",
    "system/build.prop",
    "system/lib",
    "system/lib/libx.so.1",
    "system/lib/libx.so",
    LONG,
  ];
  execFileSync("tar", [
    "--format=gnu",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--mtime=@1600000000",
    "--no-recursion",
    "-cJf",
    out,
    "-C",
    src,
    ...order,
  ]);
  return out;
}

describe("repackDeviceTarballKeyring", () => {
  it("rewrites only partitions/recovery.img", async () => {
    const ramdisk = makeRamdisk("etc", "gzip");
    const recovery = mkbootimg(kernel, ramdisk, { pageSize: 2048 }).image;
    const path = deviceTarball(recovery);
    const before = members(path);
    expect(await repackDeviceTarballKeyring(path, keyring, "mako")).toBe(true);
    const after = members(path);
    expect(after.map((m) => m.name)).toEqual(before.map((m) => m.name));
    expect(after.map((m) => m.name)).toContain(LONG);
    for (const [i, m] of before.entries()) {
      if (m.name === "partitions/recovery.img") {
        expect({ ...after[i], size: 0, sha: "" }).toEqual({ ...m, size: 0, sha: "" });
        expect(after[i].sha).not.toBe(m.sha);
      } else {
        expect(after[i]).toEqual(m);
      }
    }
    // GNU format, like every tarball but the version tarball (§8.5 step 9).
    const raw = execFileSync("xz", ["-dc", path], { maxBuffer: 1 << 28 });
    expect(raw.toString("latin1", 257, 265)).toBe("ustar  \0");
    const newRecovery = memberContent(path, "partitions/recovery.img");
    expectOnlyKeyringChanged(
      extract(ramdisk, "gzip"),
      extract(expectValidImage(newRecovery, { pageSize: 2048 }), "gzip"),
      "etc/system-image/archive-master.tar.xz",
    );
    expect(readdirSync(join(path, ".."))).toEqual(["device-abc.tar.xz", "src"]);
  });

  it("handles the vendor header of krillin recoveries", async () => {
    const payload = makeRamdisk("usr", "gzip");
    const header = bytes(512, 5);
    const path = deviceTarball(mkbootimg(kernel, Buffer.concat([header, payload])).image);
    expect(await repackDeviceTarballKeyring(path, keyring, "krillin")).toBe(true);
    const ramdisk = unpackBootimg(memberContent(path, "partitions/recovery.img")).parts.ramdisk;
    expect(ramdisk.subarray(0, 512).equals(header)).toBe(true);
    expectOnlyKeyringChanged(
      extract(payload, "gzip"),
      extract(ramdisk.subarray(512), "gzip"),
      "usr/share/system-image/archive-master.tar.xz",
    );
  });

  it("returns false and leaves a tarball without recovery.img untouched", async () => {
    const path = deviceTarball(null);
    const bytesBefore = readFileSync(path);
    const mtimeBefore = statSync(path).mtimeMs;
    expect(await repackDeviceTarballKeyring(path, keyring, "krillin")).toBe(false);
    expect(readFileSync(path).equals(bytesBefore)).toBe(true);
    expect(statSync(path).mtimeMs).toBe(mtimeBefore);
    expect(readdirSync(join(path, ".."))).toEqual(["device-abc.tar.xz", "src"]);
  });

  it("fails on a broken recovery image, naming it, and leaves the tarball untouched", async () => {
    const path = deviceTarball(Buffer.from("ANDROID!this is not a boot image"));
    const bytesBefore = readFileSync(path);
    const err = await repackDeviceTarballKeyring(path, keyring).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect((err as Error).message).toBe(`Cannot parse boot image ${path}: partitions/recovery.img: truncated header (32 bytes, need 1632)`);
    expect(readFileSync(path).equals(bytesBefore)).toBe(true);
    expect(readdirSync(join(path, ".."))).toEqual(["device-abc.tar.xz", "src"]);
  });
});
