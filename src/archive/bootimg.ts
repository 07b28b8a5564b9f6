/**
 * Android boot/recovery images, header versions 0, 1 and 2 (AOSP bootimg.h, mkbootimg.py).
 * Used by the recovery keyring swap (server-reference §8.5) in place of abootimg.
 *
 * Layout: one header page, then kernel, ramdisk, second stage, v1+ recovery DTBO, v2 DTB,
 * each starting on a page boundary and zero-padded to the next one. Little-endian header:
 *
 *   0 magic "ANDROID!"   8 kernel_size   12 kernel_addr   16 ramdisk_size   20 ramdisk_addr
 *   24 second_size   28 second_addr   32 tags_addr   36 page_size   40 header_version
 *   44 os_version   48 name[16]   64 cmdline[512]   576 id[32]   608 extra_cmdline[1024]
 *   v1: 1632 recovery_dtbo_size   1636 recovery_dtbo_offset (u64)   1644 header_size
 *   v2: 1648 dtb_size   1652 dtb_addr (u64)                              (v2 header ends at 1660)
 *
 * Before v1 the header_version word was unused; Qualcomm (CAF) trees stored the size of a
 * "QCDT" device-tree blob there, placed after the second stage. Such images are kept working.
 */
import { createHash } from "node:crypto";
import { ArchiveError } from "../errors.js";

export const BOOT_MAGIC = "ANDROID!";
const V0_SIZE = 1632;
const V1_SIZE = 1648;
const V2_SIZE = 1660;
const QCDT_MAGIC = "QCDT";

const O = {
  kernelSize: 8,
  kernelAddr: 12,
  ramdiskSize: 16,
  ramdiskAddr: 20,
  secondSize: 24,
  secondAddr: 28,
  tagsAddr: 32,
  pageSize: 36,
  headerVersion: 40,
  osVersion: 44,
  name: 48,
  cmdline: 64,
  id: 576,
  extraCmdline: 608,
  recoveryDtboSize: 1632,
  recoveryDtboOffset: 1636,
  headerSize: 1644,
  dtbSize: 1648,
  dtbAddr: 1652,
} as const;
const TEXT = { name: [O.name, 16], cmdline: [O.cmdline, 512], extraCmdline: [O.extraCmdline, 1024] } as const;

export interface BootImage {
  /** Layout version: 1 and 2 as in the header; 0 for anything older (incl. CAF QCDT images). */
  version: 0 | 1 | 2;
  /** The raw header_version word (a QCDT size on CAF images). */
  headerVersionField: number;
  pageSize: number;
  kernelAddr: number;
  ramdiskAddr: number;
  secondAddr: number;
  tagsAddr: number;
  /** os_version << 11 | os_patch_level, as mkbootimg packs it. */
  osVersion: number;
  name: string;
  cmdline: string;
  extraCmdline: string;
  /** The id as stored; `buildBootImage` always writes `bootImageId()`. */
  id: Buffer;
  kernel: Buffer;
  ramdisk: Buffer;
  second: Buffer;
  /** v1+ only (empty otherwise). */
  recoveryDtbo: Buffer;
  recoveryDtboOffset: bigint;
  /** v1+: header_size as stored (1648 or 1660). */
  headerSize: number;
  /** v2 only (empty otherwise). */
  dtb: Buffer;
  dtbAddr: bigint;
  /** CAF v0 device-tree blob after the second stage, or null. */
  qcomDt: Buffer | null;
  /** Bytes after the last page-padded section (partition padding, vendor trailers). */
  tail: Buffer;
  /** The header page as read: building starts from it, so bytes not modelled here survive. */
  headerPage: Buffer;
}

const pad = (n: number, page: number) => Math.ceil(n / page) * page;

function text(page: Buffer, [off, len]: readonly [number, number]): string {
  const field = page.subarray(off, off + len);
  const nul = field.indexOf(0);
  return field.toString("latin1", 0, nul === -1 ? len : nul);
}

/** Parses an image held in memory; sections are views into `buf`. `what` names it in errors. */
export function parseBootImage(buf: Buffer, what: string): BootImage {
  const fail = (reason: string) => new ArchiveError(`Cannot parse boot image ${what}: ${reason}`);
  if (buf.length < 8 || buf.toString("latin1", 0, 8) !== BOOT_MAGIC) {
    const seen = buf
      .subarray(0, 8)
      .toString("latin1")
      .replace(/[^\x20-\x7e]/g, "?");
    throw fail(`bad magic '${seen}' (expected '${BOOT_MAGIC}')`);
  }
  if (buf.length < V0_SIZE) throw fail(`truncated header (${buf.length} bytes, need ${V0_SIZE})`);
  const u32 = (off: number) => buf.readUInt32LE(off);
  const field = u32(O.headerVersion);
  if (field === 3 || field === 4) throw fail(`header version ${field} is not supported (only 0, 1 and 2)`);
  const version: 0 | 1 | 2 = field === 1 || field === 2 ? field : 0;
  const headerLen = [V0_SIZE, V1_SIZE, V2_SIZE][version];
  if (buf.length < headerLen) throw fail(`truncated v${version} header (${buf.length} bytes, need ${headerLen})`);
  const pageSize = u32(O.pageSize);
  if (pageSize < 2048 || pageSize > 1 << 20 || (pageSize & (pageSize - 1)) !== 0) {
    throw fail(`bad page size ${pageSize} (a power of two from 2048 is expected)`);
  }
  if (buf.length < pageSize) throw fail(`truncated header page (${buf.length} bytes, page size ${pageSize})`);

  let pos = pageSize;
  const take = (part: string, size: number): Buffer => {
    if (pos + size > buf.length) {
      throw fail(`${part} (${size} bytes at offset ${pos}) extends beyond the end of the file (${buf.length} bytes)`);
    }
    const out = buf.subarray(pos, pos + size);
    pos = Math.min(buf.length, pos + pad(size, pageSize));
    return out;
  };
  const kernel = take("kernel", u32(O.kernelSize));
  const ramdisk = take("ramdisk", u32(O.ramdiskSize));
  const second = take("second stage", u32(O.secondSize));
  let recoveryDtbo: Buffer = Buffer.alloc(0);
  let recoveryDtboOffset = 0n;
  let headerSize = 0;
  let dtb: Buffer = Buffer.alloc(0);
  let dtbAddr = 0n;
  let qcomDt: Buffer | null = null;
  if (version >= 1) {
    recoveryDtboOffset = buf.readBigUInt64LE(O.recoveryDtboOffset);
    headerSize = u32(O.headerSize);
    const size = u32(O.recoveryDtboSize);
    // The offset is redundant with the layout; a different one means a layout we do not know.
    if (size > 0 && recoveryDtboOffset !== BigInt(pos)) {
      throw fail(`recovery DTBO offset ${recoveryDtboOffset} does not follow the second stage (expected ${pos})`);
    }
    recoveryDtbo = take("recovery DTBO", size);
  }
  if (version === 2) {
    dtbAddr = buf.readBigUInt64LE(O.dtbAddr);
    dtb = take("DTB", u32(O.dtbSize));
  }
  if (version === 0 && field > 0 && buf.toString("latin1", pos, pos + 4) === QCDT_MAGIC) {
    qcomDt = take("QCDT device tree", field);
  }
  const page = buf.subarray(0, pageSize);
  return {
    version,
    headerVersionField: field,
    pageSize,
    kernelAddr: u32(O.kernelAddr),
    ramdiskAddr: u32(O.ramdiskAddr),
    secondAddr: u32(O.secondAddr),
    tagsAddr: u32(O.tagsAddr),
    osVersion: u32(O.osVersion),
    name: text(page, TEXT.name),
    cmdline: text(page, TEXT.cmdline),
    extraCmdline: text(page, TEXT.extraCmdline),
    id: buf.subarray(O.id, O.id + 32),
    kernel,
    ramdisk,
    second,
    recoveryDtbo,
    recoveryDtboOffset,
    headerSize,
    dtb,
    dtbAddr,
    qcomDt,
    tail: buf.subarray(pos),
    headerPage: page,
  };
}

/**
 * The id mkbootimg stores: SHA-1 over each section followed by its size as a little-endian
 * u32 (kernel, ramdisk, second; + recovery DTBO for v1+; + DTB for v2; + the QCDT blob as CAF
 * mkbootimg adds it), zero-padded to 32 bytes.
 */
export function bootImageId(img: BootImage): Buffer {
  const sha = createHash("sha1");
  const add = (part: Buffer) => {
    const size = Buffer.alloc(4);
    size.writeUInt32LE(part.length);
    sha.update(part).update(size);
  };
  add(img.kernel);
  add(img.ramdisk);
  add(img.second);
  if (img.version >= 1) add(img.recoveryDtbo);
  if (img.version === 2) add(img.dtb);
  if (img.qcomDt) add(img.qcomDt);
  return Buffer.concat([sha.digest(), Buffer.alloc(12)]);
}

/** Serialises `img`: sizes, the v1 DTBO offset and the id are recomputed from the sections. */
export function buildBootImage(img: BootImage, what = "image"): Buffer {
  const fail = (reason: string) => new ArchiveError(`Cannot build boot image ${what}: ${reason}`);
  const { pageSize } = img;
  if (pageSize < 2048 || (pageSize & (pageSize - 1)) !== 0) throw fail(`bad page size ${pageSize}`);
  const header = Buffer.alloc(pageSize);
  img.headerPage.copy(header, 0, 0, Math.min(pageSize, img.headerPage.length));
  header.write(BOOT_MAGIC, 0, "latin1");
  const u32 = (off: number, v: number) => header.writeUInt32LE(v >>> 0, off);
  u32(O.kernelSize, img.kernel.length);
  u32(O.kernelAddr, img.kernelAddr);
  u32(O.ramdiskSize, img.ramdisk.length);
  u32(O.ramdiskAddr, img.ramdiskAddr);
  u32(O.secondSize, img.second.length);
  u32(O.secondAddr, img.secondAddr);
  u32(O.tagsAddr, img.tagsAddr);
  u32(O.pageSize, pageSize);
  u32(O.headerVersion, img.qcomDt ? img.qcomDt.length : img.headerVersionField);
  u32(O.osVersion, img.osVersion);
  for (const key of ["name", "cmdline", "extraCmdline"] as const) {
    const [off, len] = TEXT[key];
    // Rewritten only when changed, so bytes after the NUL of an untouched field survive.
    if (text(header, TEXT[key]) === img[key]) continue;
    const bytes = Buffer.from(img[key], "latin1");
    if (bytes.length > len) throw fail(`${key} is ${bytes.length} bytes, the field holds ${len}`);
    header.fill(0, off, off + len);
    bytes.copy(header, off);
  }
  const sections = [img.kernel, img.ramdisk, img.second];
  if (img.version >= 1) {
    u32(O.recoveryDtboSize, img.recoveryDtbo.length);
    const offset = pageSize + sections.reduce((n, s) => n + pad(s.length, pageSize), 0);
    // mkbootimg writes 0 without a DTBO; keep whatever was there in that case.
    header.writeBigUInt64LE(img.recoveryDtbo.length > 0 ? BigInt(offset) : img.recoveryDtboOffset, O.recoveryDtboOffset);
    u32(O.headerSize, img.headerSize);
    sections.push(img.recoveryDtbo);
  }
  if (img.version === 2) {
    u32(O.dtbSize, img.dtb.length);
    header.writeBigUInt64LE(img.dtbAddr, O.dtbAddr);
    sections.push(img.dtb);
  }
  if (img.qcomDt) sections.push(img.qcomDt);
  bootImageId(img).copy(header, O.id);

  const total = pageSize + sections.reduce((n, s) => n + pad(s.length, pageSize), 0) + img.tail.length;
  const out = Buffer.alloc(total);
  header.copy(out);
  let pos = pageSize;
  for (const s of sections) {
    s.copy(out, pos);
    pos += pad(s.length, pageSize);
  }
  img.tail.copy(out, pos);
  return out;
}
