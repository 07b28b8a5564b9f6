/**
 * Real boot images and ramdisks for the boot image and keyring-swap tests, made with the
 * Debian tools the reference relies on: GNU cpio, gzip, xz, mkbootimg/unpack_bootimg
 * (package mkbootimg) and abootimg.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let root: string | undefined;

/** A fresh directory under one per-process root that `cleanup()` removes. */
export function tmp(prefix = "d-"): string {
  root ??= mkdtempSync(join(tmpdir(), "si-bootimg-test-"));
  return mkdtempSync(join(root, prefix));
}

export function cleanup(): void {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
  fixedMkbootimg = undefined;
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

export type Layout = "etc" | "usr" | "none";

/**
 * A recovery-like ramdisk tree: the old keyring at etc/ or usr/share/ (or nowhere), plus
 * entries whose metadata a repack must keep: modes, an owner, a symlink, an mtime, a
 * hard link pair and an empty directory.
 */
export function makeRamdiskTree(dir: string, layout: Layout): void {
  const at = (p: string) => join(dir, p);
  mkdirSync(at("sbin"), { recursive: true });
  mkdirSync(at("res/keys"), { recursive: true });
  mkdirSync(at("tmp"), { mode: 0o1777 });
  chmodSync(at("tmp"), 0o1777);
  writeFileSync(at("init"), "#!/bin/sh\necho init\n");
  chmodSync(at("init"), 0o750);
  writeFileSync(at("sbin/recovery"), bytes(7000, 7));
  chmodSync(at("sbin/recovery"), 0o755);
  symlinkSync("recovery", at("sbin/adbd"));
  writeFileSync(at("res/keys/owned"), "owned by 1000\n");
  chownSync(at("res/keys/owned"), 1000, 1001);
  writeFileSync(at("res/a"), "hard\n");
  execFileSync("ln", [at("res/a"), at("res/b")]);
  writeFileSync(at("default.prop"), "ro.secure=0\n");
  if (layout !== "none") {
    const keyDir = layout === "usr" ? "usr/share/system-image" : "etc/system-image";
    mkdirSync(at(keyDir), { recursive: true });
    writeFileSync(at(`${keyDir}/archive-master.tar.xz`), bytes(900, 1));
    writeFileSync(at(`${keyDir}/archive-master.tar.xz.asc`), "-----BEGIN PGP SIGNATURE-----\nold\n");
    writeFileSync(at(`${keyDir}/other.tar.xz`), bytes(300, 2));
    if (layout === "usr") {
      // An etc/system-image that must stay untouched when the usr/share copy exists.
      mkdirSync(at("etc/system-image"), { recursive: true });
      writeFileSync(at("etc/system-image/readme"), "etc copy\n");
    }
  }
  for (const p of ["init", "default.prop", "res/keys/owned"]) utimesSync(at(p), 1_400_000_000, 1_400_000_000);
}

/** `find . | cpio -o -H <format>` in `dir`, as the reference packs a ramdisk. */
export function cpioOf(dir: string, format: "newc" | "crc" = "newc"): Buffer {
  return execFileSync("sh", ["-c", `find . | LC_ALL=C sort | cpio --quiet -o -H ${format}`], { cwd: dir, maxBuffer: 1 << 28 });
}

export type RamdiskCompression = "gzip" | "xz" | "none";

export function compress(data: Buffer, how: RamdiskCompression): Buffer {
  if (how === "gzip") return execFileSync("gzip", ["-9", "-n", "-c"], { input: data });
  // What the kernel wants for an initramfs, and what the swap must keep.
  if (how === "xz") return execFileSync("xz", ["-c", "--check=crc32", "-6"], { input: data });
  return data;
}

export function makeRamdisk(layout: Layout, how: RamdiskCompression): Buffer {
  const dir = tmp("si-ramdisk-");
  makeRamdiskTree(dir, layout);
  return compress(cpioOf(dir), how);
}

export interface MkbootimgArgs {
  headerVersion?: 0 | 1 | 2;
  pageSize?: number;
  second?: Buffer;
  recoveryDtbo?: Buffer;
  dtb?: Buffer;
  cmdline?: string;
  board?: string;
}

/**
 * Debian's mkbootimg (1:29.0.6) computes the recovery DTBO offset with a float division and
 * crashes; this copy fixes that one operator and is otherwise the packaged script.
 */
let fixedMkbootimg: string | undefined;
function mkbootimgScript(): string {
  if (!fixedMkbootimg) {
    const src = readFileSync(execFileSync("sh", ["-c", "command -v mkbootimg"]).toString().trim(), "utf8");
    fixedMkbootimg = join(tmp("si-mkbootimg-"), "mkbootimg.py");
    writeFileSync(fixedMkbootimg, src.replace("+ page_size - 1) / page_size", "+ page_size - 1) // page_size"));
  }
  return fixedMkbootimg;
}

/** Runs mkbootimg on the given parts; returns the image and the id it printed. */
export function mkbootimg(kernel: Buffer, ramdisk: Buffer, args: MkbootimgArgs = {}): { image: Buffer; id: string } {
  const dir = tmp("si-mkbootimg-run-");
  const file = (name: string, data: Buffer) => {
    writeFileSync(join(dir, name), data);
    return join(dir, name);
  };
  const argv = [mkbootimgScript(), "--kernel", file("kernel", kernel), "--ramdisk", file("ramdisk", ramdisk)];
  if (args.second) argv.push("--second", file("second", args.second));
  if (args.recoveryDtbo) argv.push("--recovery_dtbo", file("dtbo", args.recoveryDtbo));
  if (args.dtb) argv.push("--dtb", file("dtb", args.dtb));
  argv.push("--header_version", String(args.headerVersion ?? 0), "--pagesize", String(args.pageSize ?? 2048));
  argv.push("--base", "0x80000000", "--ramdisk_offset", "0x01000000", "--tags_offset", "0x00000100");
  argv.push("--cmdline", args.cmdline ?? "console=ttyMSM0 androidboot.hardware=qcom", "--board", args.board ?? "recovery");
  argv.push("--os_version", "5.1.0", "--os_patch_level", "2016-03");
  argv.push("--id", "-o", join(dir, "out.img"));
  const id = execFileSync("python3", argv).toString().trim();
  return { image: readFileSync(join(dir, "out.img")), id };
}

/** unpack_bootimg's view of an image: its parts and its printed header lines. */
export function unpackBootimg(image: Buffer): { parts: Record<string, Buffer>; info: string } {
  const dir = tmp("si-unpack-");
  writeFileSync(join(dir, "in.img"), image);
  const info = execFileSync("unpack_bootimg", ["--boot_img", join(dir, "in.img"), "--out", join(dir, "out")]).toString();
  const parts: Record<string, Buffer> = {};
  for (const name of ["kernel", "ramdisk", "second", "recovery_dtbo", "dtb"]) {
    try {
      parts[name] = readFileSync(join(dir, "out", name));
    } catch {
      /* absent part */
    }
  }
  return { parts, info };
}

/** `abootimg -i` output for an image. */
export function abootimgInfo(image: Buffer): string {
  const dir = tmp("si-abootimg-");
  writeFileSync(join(dir, "img"), image);
  return execFileSync("abootimg", ["-i", join(dir, "img")]).toString();
}
