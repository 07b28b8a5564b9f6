/**
 * The 512-byte header block: field layout, numbers (octal or GNU base-256), checksum.
 * Shared by the reader and the GNU writer so the format is known in one place.
 */
import { ArchiveError } from "../../errors.js";

export const BLOCK = 512;

/** Field offsets and lengths (POSIX ustar; GNU uses the same for what we touch). */
export const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 8], // "ustar\0" + "00" (POSIX) or "ustar  \0" (GNU)
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155], // POSIX only; GNU keeps atime/ctime here
} as const satisfies Record<string, readonly [number, number]>;

export const GNU_MAGIC = Buffer.from("ustar  \0", "latin1");
export const POSIX_MAGIC = Buffer.from("ustar\0", "latin1");

/** NUL-terminated string of a field, decoded as UTF-8. */
export function readString(block: Buffer, [off, len]: readonly [number, number]): string {
  const field = block.subarray(off, off + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? len : nul).toString("utf8");
}

/** A numeric field: octal text (spaces/NULs around it) or GNU base-256 (high bit set). */
export function readNumber(block: Buffer, [off, len]: readonly [number, number], what: string): number {
  const field = block.subarray(off, off + len);
  if (field[0] === 0x80 || field[0] === 0xff) {
    // GNU base-256: the bytes after the marker, big-endian; 0xff marks a negative value.
    let v = 0n;
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(field[i]);
    if (field[0] === 0xff) v -= 1n << BigInt(8 * (len - 1));
    return Number(v);
  }
  const text = field.toString("latin1").replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new ArchiveError(`Cannot read tar header: bad ${what} field '${text}'`);
  return parseInt(text, 8);
}

/** Sum of the header bytes with the checksum field as spaces; POSIX unsigned, old tars signed. */
export function checksums(block: Buffer): [number, number] {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return [unsigned, signed];
}

/** Writes `s` (UTF-8) into a field; the caller guarantees it fits. */
export function writeString(block: Buffer, [off, len]: readonly [number, number], s: string): void {
  const bytes = Buffer.from(s, "utf8");
  bytes.copy(block, off, 0, Math.min(len, bytes.length));
}

/**
 * Octal with a trailing NUL ("%0*o\0", as GNU tar), or GNU base-256 when the value does not
 * fit (uids above 2097151, sizes of 8 GiB and more, negative mtimes).
 */
export function writeNumber(block: Buffer, [off, len]: readonly [number, number], value: number): void {
  if (!Number.isSafeInteger(value)) throw new ArchiveError(`Cannot write tar header: ${value} is not an integer`);
  if (value >= 0 && value < 8 ** (len - 1)) {
    block.write(value.toString(8).padStart(len - 1, "0") + "\0", off, len, "latin1");
    return;
  }
  let v = BigInt(value);
  const span = 1n << BigInt(8 * (len - 1));
  if (v >= span || v < -span) throw new ArchiveError(`Cannot write tar header: ${value} does not fit in ${len} bytes`);
  if (v < 0n) v += span;
  for (let i = len - 1; i >= 1; i--) {
    block[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  block[off] = value < 0 ? 0xff : 0x80;
}

/** Fills in the checksum field ("%06o\0 ", as GNU tar and Python write it). */
export function sealChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  const [sum] = checksums(block);
  block.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "latin1");
}
