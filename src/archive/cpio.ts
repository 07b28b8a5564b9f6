/**
 * SVR4 "newc" cpio (magic 070701, and 070702 with checksums), the format of Linux initramfs
 * and Android ramdisks. Entries keep every header field as read (inode, mode, owner, mtime,
 * link count, device numbers), so an archive written back unchanged is byte-identical: that
 * is what lets the recovery keyring swap (server-reference §8.5) touch two files and nothing
 * else, where the reference needed fakeroot to keep owners and modes.
 *
 * Layout per entry: 110-byte ASCII-hex header, NUL-terminated name padded so header+name is
 * a multiple of 4, data padded to 4. The archive ends with an entry named "TRAILER!!!".
 */
import { ArchiveError } from "../errors.js";

export const NEWC_MAGIC = "070701";
export const CRC_MAGIC = "070702";
export const TRAILER = "TRAILER!!!";

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export interface CpioEntry {
  /** Name as stored (no leading "./" in GNU cpio output), decoded as latin1 so any bytes survive. */
  name: string;
  ino: number;
  /** File type and permission bits (S_IFREG | 0644, ...). */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  devMajor: number;
  devMinor: number;
  rdevMajor: number;
  rdevMinor: number;
  /** Content of a regular file, target of a symlink; empty otherwise. */
  data: Buffer;
}

export interface CpioArchive {
  /** "070701" (newc) or "070702" (newc with checksums), written back as found. */
  magic: string;
  entries: CpioEntry[];
  /**
   * What followed the trailer: zero padding (GNU cpio pads to 512-byte blocks) is recorded
   * as `padTo`; anything else (a further concatenated archive) is kept verbatim in `rest`.
   */
  padTo: number;
  rest: Buffer;
  /** The trailer entry as read (tools differ in its inode and link count). */
  trailer?: CpioEntry;
}

const HEADER = 110;
const FIELDS = [
  "ino",
  "mode",
  "uid",
  "gid",
  "nlink",
  "mtime",
  "filesize",
  "devMajor",
  "devMinor",
  "rdevMajor",
  "rdevMinor",
  "namesize",
  "check",
] as const;

const align4 = (n: number) => (n + 3) & ~3;

/** Parses a whole newc archive held in memory; `what` names it in errors. */
export function parseCpio(buf: Buffer, what: string): CpioArchive {
  const entries: CpioEntry[] = [];
  let magic: string | undefined;
  let trailer: CpioEntry | undefined;
  let pos = 0;
  for (;;) {
    if (pos + HEADER > buf.length) {
      throw new ArchiveError(`Cannot parse cpio archive ${what}: truncated header at byte ${pos} (no ${TRAILER} entry)`);
    }
    const m = buf.toString("latin1", pos, pos + 6);
    if (m !== NEWC_MAGIC && m !== CRC_MAGIC) {
      throw new ArchiveError(
        `Cannot parse cpio archive ${what}: bad magic '${printable(m)}' at byte ${pos} (only newc 070701/070702 is supported)`,
      );
    }
    if (magic !== undefined && m !== magic) throw new ArchiveError(`Cannot parse cpio archive ${what}: mixed magics at byte ${pos}`);
    magic = m;
    const f: Record<string, number> = {};
    FIELDS.forEach((name, i) => {
      const text = buf.toString("latin1", pos + 6 + i * 8, pos + 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(text)) {
        throw new ArchiveError(`Cannot parse cpio archive ${what}: bad ${name} field '${printable(text)}' at byte ${pos}`);
      }
      f[name] = parseInt(text, 16);
    });
    const nameStart = pos + HEADER;
    const nameEnd = nameStart + f.namesize;
    if (f.namesize < 1 || nameEnd > buf.length || buf[nameEnd - 1] !== 0) {
      throw new ArchiveError(`Cannot parse cpio archive ${what}: bad name at byte ${pos}`);
    }
    const name = buf.toString("latin1", nameStart, nameEnd - 1);
    const dataStart = align4(nameEnd);
    const dataEnd = dataStart + f.filesize;
    if (dataEnd > buf.length) {
      throw new ArchiveError(
        `Cannot parse cpio archive ${what}: '${name}' needs ${f.filesize} bytes at byte ${dataStart}, archive has ${buf.length}`,
      );
    }
    pos = align4(dataEnd);
    const entry: CpioEntry = {
      name,
      ino: f.ino,
      mode: f.mode,
      uid: f.uid,
      gid: f.gid,
      nlink: f.nlink,
      mtime: f.mtime,
      devMajor: f.devMajor,
      devMinor: f.devMinor,
      rdevMajor: f.rdevMajor,
      rdevMinor: f.rdevMinor,
      data: buf.subarray(dataStart, dataEnd),
    };
    if (name === TRAILER) {
      trailer = entry;
      break;
    }
    entries.push(entry);
  }
  const tail = buf.subarray(Math.min(pos, buf.length));
  const zeros = tail.every((b) => b === 0);
  // A zero tail that ends on a 512-byte block is GNU cpio's block padding: redo it on write.
  const padTo = zeros && buf.length % 512 === 0 ? 512 : 4;
  return { magic: magic, entries, padTo, rest: zeros && padTo === 512 ? Buffer.alloc(0) : tail, trailer };
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}

function hex8(n: number, field: string, name: string): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new ArchiveError(`Cannot write cpio entry '${name}': ${field} ${n} does not fit 8 hex digits`);
  }
  return n.toString(16).toUpperCase().padStart(8, "0");
}

/** 070702 checksum: the byte sum of a regular file's data, modulo 2^32 (0 for the rest). */
function checksum(e: CpioEntry, magic: string): number {
  if (magic !== CRC_MAGIC || (e.mode & S_IFMT) !== S_IFREG) return 0;
  let sum = 0;
  for (const b of e.data) sum = (sum + b) >>> 0;
  return sum;
}

function encodeEntry(e: CpioEntry, magic: string): Buffer {
  const name = Buffer.from(`${e.name}\0`, "latin1");
  const values = [
    e.ino,
    e.mode,
    e.uid,
    e.gid,
    e.nlink,
    e.mtime,
    e.data.length,
    e.devMajor,
    e.devMinor,
    e.rdevMajor,
    e.rdevMinor,
    name.length,
    checksum(e, magic),
  ];
  const header = magic + values.map((v, i) => hex8(v, FIELDS[i], e.name)).join("");
  const head = Buffer.concat([Buffer.from(header, "latin1"), name]);
  const out = Buffer.alloc(align4(head.length) + align4(e.data.length));
  head.copy(out);
  e.data.copy(out, align4(head.length));
  return out;
}

/** Writes an archive: entries, the trailer, then the padding/rest recorded by `parseCpio`. */
export function buildCpio(archive: CpioArchive): Buffer {
  const parts = archive.entries.map((e) => encodeEntry(e, archive.magic));
  // Default trailer as GNU cpio writes it: every field 0 except nlink 1 and namesize.
  const trailer: CpioEntry = archive.trailer ?? {
    name: TRAILER,
    ino: 0,
    mode: 0,
    uid: 0,
    gid: 0,
    nlink: 1,
    mtime: 0,
    devMajor: 0,
    devMinor: 0,
    rdevMajor: 0,
    rdevMinor: 0,
    data: Buffer.alloc(0),
  };
  parts.push(encodeEntry({ ...trailer, name: TRAILER }, archive.magic));
  const length = parts.reduce((n, p) => n + p.length, 0);
  const pad = (archive.padTo - (length % archive.padTo)) % archive.padTo;
  if (pad) parts.push(Buffer.alloc(pad));
  parts.push(archive.rest);
  return Buffer.concat(parts);
}

/** Entry name without "./" or "/" prefixes, for lookups independent of how it was packed. */
export function normalName(name: string): string {
  return name.replace(/^(\.?\/)+/, "");
}
