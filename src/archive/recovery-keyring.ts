/**
 * Recovery keyring swap (server-reference §8.5): put the server's keyring into the recovery
 * image of a device tarball, so a recovery flashed from it trusts this server's signatures.
 * The reference shells out to abootimg, cpio and fakeroot; this edits the boot image, the
 * compressed ramdisk and its cpio archive in memory (a recovery image is tens of MB at most)
 * and keeps every other ramdisk entry as it was, owners and modes included.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, rename, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { imageLimits, type ImageLimits } from "../config/types.js";
import { ArchiveError } from "../errors.js";
import { defaultCodec } from "../io/xz.js";
import { TarInspector } from "./inspect/inspector.js";
import { buildBootImage, parseBootImage } from "./bootimg.js";
import { compressBuffer, decompressBuffer } from "./compression.js";
import { buildCpio, normalName, parseCpio, S_IFDIR, S_IFREG, type CpioEntry } from "./cpio.js";
import { GnuTarWriter } from "./tar/index.js";

export interface RecoveryKeyring {
  /** Keyring name: the files become `<name>.tar.xz` and `<name>.tar.xz.asc`. */
  name: string;
  tarball: Buffer;
  signature: Buffer;
}

export interface SwapOptions {
  /** Strip and reattach the 512-byte vendor header of the ramdisk (§8.5 step 1). */
  vendorHeader?: boolean;
  /** Names the image in error messages. */
  label?: string;
  /** mtime of the entries written (seconds); default now. */
  mtime?: number;
}

/** §8.5 step 1: MediaTek devices whose recovery ramdisk carries a 512-byte header. */
const VENDOR_HEADER_DEVICES = new Set(["krillin", "vegetahd", "arale"]);
export const RECOVERY_HEADER_SIZE = 512;
/** MediaTek "mkimage" header: magic, payload size, name, 0xff fill. */
const MTK_MAGIC = 0x58881688;
/** The tar member §8.5 step 2 looks for. */
export const RECOVERY_MEMBER = "partitions/recovery.img";
/** Bound on the one member buffered in memory (recovery partitions are far smaller). */
const MAX_RECOVERY = 256 << 20;

export function needsVendorHeader(device: string | undefined): boolean {
  return device !== undefined && VENDOR_HEADER_DEVICES.has(device);
}

/** §8.4 `strip_recovery_header`: the first 512 bytes, and the rest. */
export function stripRecoveryHeader(data: Buffer, what = "ramdisk"): { header: Buffer; body: Buffer } {
  if (data.length < RECOVERY_HEADER_SIZE) {
    throw new ArchiveError(`Cannot strip recovery header of ${what}: ${data.length} bytes, the header alone is ${RECOVERY_HEADER_SIZE}`);
  }
  return { header: data.subarray(0, RECOVERY_HEADER_SIZE), body: data.subarray(RECOVERY_HEADER_SIZE) };
}

/**
 * §8.4 `reattach_recovery_header`: header + body. The reference puts the old header back
 * verbatim; a MediaTek header that recorded the old payload size gets the new one, since the
 * bootloader may load that many bytes.
 */
export function reattachRecoveryHeader(header: Buffer, body: Buffer, oldBodySize?: number): Buffer {
  const out = Buffer.concat([header, body]);
  if (header.length >= 8 && header.readUInt32LE(0) === MTK_MAGIC && header.readUInt32LE(4) === oldBodySize) {
    out.writeUInt32LE(body.length, 4);
  }
  return out;
}

/** §8.5 step 6: usr/share/system-image if the keyring is already there, else etc/system-image. */
function destination(entries: CpioEntry[], name: string): string {
  const usr = `usr/share/system-image/${name}.tar.xz`;
  return entries.some((e) => normalName(e.name) === usr) ? usr : `etc/system-image/${name}.tar.xz`;
}

/** Replaces the file entry at `path` (or adds it, with any missing parent directories). */
function putFile(entries: CpioEntry[], path: string, data: Buffer, mtime: number): void {
  // New names follow the archive's own style ("./etc/..." or "etc/...").
  const prefix = entries.some((e) => e.name.startsWith("./")) ? "./" : "";
  let nextIno = entries.reduce((m, e) => Math.max(m, e.ino), 0) + 1;
  const fresh = (name: string, mode: number, nlink: number, content: Buffer): CpioEntry => ({
    name: prefix + name,
    ino: nextIno++,
    mode,
    uid: 0,
    gid: 0,
    nlink,
    mtime,
    devMajor: 0,
    devMinor: 0,
    rdevMajor: 0,
    rdevMinor: 0,
    data: content,
  });
  const file = fresh(path, S_IFREG | 0o644, 1, data);
  const at = entries.findIndex((e) => normalName(e.name) === path);
  if (at !== -1) {
    const old = entries[at];
    // Same slot, same inode unless it was hard-linked (its data lived with the other links).
    entries[at] = { ...file, name: old.name, ino: old.nlink > 1 ? file.ino : old.ino, devMajor: old.devMajor, devMinor: old.devMinor };
    return;
  }
  const parts = path.split("/");
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join("/");
    if (!entries.some((e) => normalName(e.name) === dir)) entries.push(fresh(dir, S_IFDIR | 0o755, 2, Buffer.alloc(0)));
  }
  entries.push(file);
}

/**
 * §8.5 steps 3-8 on one recovery image: returns the new image with `<name>.tar.xz(.asc)`
 * swapped into its ramdisk, every other entry, section and header field unchanged.
 *
 * The reference also forces `bootsize=0x900000` into abootimg's config. That value only
 * feeds abootimg's "does it still fit" check and the size it truncates/pads the file to;
 * it is not stored in the image. This writes an image exactly as long as its sections
 * (like mkbootimg), with correct sizes and id, so there is nothing to force.
 */
export async function swapRecoveryKeyring(recoveryImg: Buffer, keyring: RecoveryKeyring, opts: SwapOptions = {}): Promise<Buffer> {
  const label = opts.label ?? "recovery.img";
  const img = parseBootImage(recoveryImg, label);
  let ramdisk = img.ramdisk;
  let vendorHeader: Buffer | undefined;
  if (opts.vendorHeader) ({ header: vendorHeader, body: ramdisk } = stripRecoveryHeader(ramdisk, `${label} ramdisk`));
  const what = `${label} ramdisk`;
  const { data, compression, xzCheck } = await decompressBuffer(ramdisk, what);
  const archive = parseCpio(data, compression ? `${what} (${compression})` : `${what} (uncompressed)`);
  const dest = destination(archive.entries, keyring.name);
  const mtime = opts.mtime ?? Math.floor(Date.now() / 1000);
  putFile(archive.entries, dest, keyring.tarball, mtime);
  putFile(archive.entries, `${dest}.asc`, keyring.signature, mtime);
  let newRamdisk = await compressBuffer(buildCpio(archive), compression, what, { xzCheck });
  if (vendorHeader) newRamdisk = reattachRecoveryHeader(vendorHeader, newRamdisk, ramdisk.length);
  // Zero bytes after the last section are partition padding: dropped, so a grown ramdisk
  // cannot push the image past the partition. Anything else (a vendor trailer) is kept.
  const tail = img.tail.every((b) => b === 0) ? Buffer.alloc(0) : img.tail;
  return buildBootImage({ ...img, ramdisk: newRamdisk, tail }, label);
}

async function readAll(body: NodeJS.ReadableStream, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) throw new ArchiveError(`Cannot repack ${what}: larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * §8.5 on a device tarball (.tar.xz): rewrites `path` with the keyring swapped into
 * `partitions/recovery.img`; every other member is copied in order, streamed (only the
 * recovery image is held in memory). Returns false, leaving `path` untouched, when the
 * tarball has no recovery image. One pass: only a tarball without a recovery image (rare,
 * and then deleted by the caller, §5.4.9 step 8) pays for a compression that is thrown away.
 *
 * The tarball is read through the image inspector (issue 13): a hostile member or a bomb is
 * refused before it is recompressed (`limits`: the config's, default imageLimits({}); the
 * published result is inspected again with the config's limits).
 */
export async function repackDeviceTarballKeyring(
  path: string,
  keyring: RecoveryKeyring,
  device?: string,
  opts: { limits?: ImageLimits; label?: string } = {},
): Promise<boolean> {
  const codec = defaultCodec();
  const tmp = `${path}.repack-${process.pid}-${randomBytes(4).toString("hex")}`;
  const inspector = new TarInspector({ file: opts.label ?? path, limits: opts.limits ?? imageLimits({}) });
  const file = createReadStream(path);
  file.on("data", (chunk) => (inspector.compressed += chunk.length));
  const input = file.pipe(codec.decompress());
  const compressor = codec.compress({ level: 9 });
  const written = pipeline(compressor, createWriteStream(tmp, { flags: "wx" }));
  written.catch(() => undefined); // awaited below; this only avoids an unhandled rejection
  const writer = new GnuTarWriter(compressor);
  let found = false;
  try {
    for await (const { header, body } of inspector.entries(input)) {
      if (header.type === "file" && header.name === RECOVERY_MEMBER) {
        const label = `${path}: ${RECOVERY_MEMBER}`;
        const img = await readAll(body, MAX_RECOVERY, label);
        const swapped = await swapRecoveryKeyring(img, keyring, { vendorHeader: needsVendorHeader(device), label });
        await writer.add({ ...header, size: swapped.length }, swapped);
        found = true;
      } else {
        await writer.add(header, body);
      }
    }
    await writer.finish();
    await written;
    if (!found) {
      await unlink(tmp);
      return false;
    }
    await chmod(tmp, (await stat(path)).mode & 0o7777);
    await rename(tmp, path);
    return true;
  } catch (err) {
    input.destroy();
    compressor.destroy();
    await written.catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
