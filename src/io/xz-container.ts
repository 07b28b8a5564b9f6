/**
 * The .xz container (xz file format 1.0.4, tukaani.org/xz/xz-file-format.txt) around
 * compressed blocks: joining the blocks of several single-stream .xz files into ONE stream.
 *
 * Why: a delta's first member (`removed`, server-reference §6.4) is known only once the new
 * image has been read, while everything after it is compressed as it streams past. Each part
 * is compressed on its own (xz blocks are independent), and the result is one stream —
 * stream header, the blocks in order, a rebuilt index, stream footer — which every reader
 * (xz, busybox xzcat, Python lzma: client-protocol §8.3) decompresses as the parts' bytes
 * concatenated. The blocks are copied raw: nothing is recompressed, and each keeps its
 * CRC64 check.
 */
import { open } from "node:fs/promises";
import type { Writable } from "node:stream";
import { crc32 } from "node:zlib";
import { ArchiveError } from "../errors.js";

const HEADER_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const FOOTER_MAGIC = Buffer.from("YZ", "latin1");
const HEADER = 12;
const FOOTER = 12;

export interface XzBlockRecord {
  /** Block header + compressed data + check, without block padding. */
  unpaddedSize: number;
  uncompressedSize: number;
}

/** Where one single-stream .xz file keeps its blocks. */
export interface XzStreamLayout {
  /** The two stream-flags bytes (the check type is the low nibble of the second). */
  flags: Buffer;
  /** Byte range of the blocks (header and index excluded). */
  blocksStart: number;
  blocksEnd: number;
  records: XzBlockRecord[];
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

function encodeVli(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

function decodeVli(buf: Buffer, pos: number, what: string): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 9; i++) {
    const b = buf[pos + i];
    if (b === undefined) break;
    v += (b & 0x7f) * mul;
    if (!(b & 0x80)) return [v, pos + i + 1];
    mul *= 0x80;
  }
  throw new ArchiveError(`Cannot read xz index: bad number in ${what}`);
}

export function streamHeader(flags: Buffer): Buffer {
  return Buffer.concat([HEADER_MAGIC, flags, u32(crc32(flags))]);
}

export function encodeIndex(records: readonly XzBlockRecord[]): Buffer {
  const parts = [Buffer.from([0x00]), encodeVli(records.length)];
  for (const r of records) parts.push(encodeVli(r.unpaddedSize), encodeVli(r.uncompressedSize));
  const body = Buffer.concat(parts);
  const padded = Buffer.concat([body, Buffer.alloc(pad4(body.length))]);
  return Buffer.concat([padded, u32(crc32(padded))]);
}

export function streamFooter(flags: Buffer, indexSize: number): Buffer {
  const tail = Buffer.concat([u32(indexSize / 4 - 1), flags]);
  return Buffer.concat([u32(crc32(tail)), tail, FOOTER_MAGIC]);
}

/** The layout of a .xz file holding exactly one stream, read from its header, footer and index. */
export async function readStreamLayout(path: string): Promise<XzStreamLayout> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const what = `'${path}'`;
    if (size < HEADER + FOOTER) throw new ArchiveError(`Cannot read xz stream ${what}: only ${size} bytes`);
    const head = Buffer.alloc(HEADER);
    const foot = Buffer.alloc(FOOTER);
    await fh.read(head, 0, HEADER, 0);
    await fh.read(foot, 0, FOOTER, size - FOOTER);
    if (!head.subarray(0, 6).equals(HEADER_MAGIC) || crc32(head.subarray(6, 8)) !== head.readUInt32LE(8)) {
      throw new ArchiveError(`Cannot read xz stream ${what}: bad stream header`);
    }
    if (!foot.subarray(10).equals(FOOTER_MAGIC) || crc32(foot.subarray(4, 10)) !== foot.readUInt32LE(0)) {
      throw new ArchiveError(`Cannot read xz stream ${what}: bad stream footer (stream padding or several streams?)`);
    }
    const flags = Buffer.from(head.subarray(6, 8));
    if (!flags.equals(foot.subarray(8, 10))) throw new ArchiveError(`Cannot read xz stream ${what}: header and footer flags differ`);
    const indexSize = (foot.readUInt32LE(4) + 1) * 4;
    const indexStart = size - FOOTER - indexSize;
    if (indexStart < HEADER) throw new ArchiveError(`Cannot read xz stream ${what}: index larger than the file`);
    const index = Buffer.alloc(indexSize);
    await fh.read(index, 0, indexSize, indexStart);
    const records = parseIndex(index, what);
    const total = records.reduce((n, r) => n + r.unpaddedSize + pad4(r.unpaddedSize), 0);
    if (HEADER + total !== indexStart)
      throw new ArchiveError(`Cannot read xz stream ${what}: blocks do not add up to the index (one stream expected)`);
    return { flags, blocksStart: HEADER, blocksEnd: indexStart, records };
  } finally {
    await fh.close();
  }
}

export function parseIndex(index: Buffer, what = "index"): XzBlockRecord[] {
  if (index[0] !== 0x00) throw new ArchiveError(`Cannot read xz index of ${what}: bad indicator`);
  if (crc32(index.subarray(0, index.length - 4)) !== index.readUInt32LE(index.length - 4)) {
    throw new ArchiveError(`Cannot read xz index of ${what}: CRC32 mismatch`);
  }
  let [count, pos] = decodeVli(index, 1, what);
  const records: XzBlockRecord[] = [];
  while (count-- > 0) {
    let unpaddedSize: number;
    let uncompressedSize: number;
    [unpaddedSize, pos] = decodeVli(index, pos, what);
    [uncompressedSize, pos] = decodeVli(index, pos, what);
    records.push({ unpaddedSize, uncompressedSize });
  }
  return records;
}

async function writeAll(out: Writable, buf: Buffer): Promise<void> {
  if (out.write(buf)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      out.off("drain", ok);
      out.off("error", done);
      out.off("close", closed);
      if (err) reject(err);
      else resolve();
    };
    const ok = () => done();
    const closed = () => done(new ArchiveError("Cannot write xz stream: the output was closed"));
    out.on("drain", ok);
    out.on("error", done);
    out.on("close", closed);
  });
}

/**
 * Writes to `out` one .xz stream holding the blocks of `parts` (single-stream .xz files) in
 * order; all parts must use the same check type. Does not end `out`. Returns the total
 * uncompressed size.
 */
export async function joinXzStreams(parts: readonly string[], out: Writable): Promise<{ uncompressedBytes: number; blocks: number }> {
  const layouts = await Promise.all(parts.map((p) => readStreamLayout(p)));
  const flags = layouts[0]?.flags;
  if (!flags) throw new ArchiveError("Cannot join xz streams: no parts");
  layouts.forEach((l, i) => {
    if (!l.flags.equals(flags)) throw new ArchiveError(`Cannot join xz streams: '${parts[i]}' uses another check type`);
  });
  await writeAll(out, streamHeader(flags));
  const records: XzBlockRecord[] = [];
  for (const [i, l] of layouts.entries()) {
    const fh = await open(parts[i], "r");
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let pos = l.blocksStart; pos < l.blocksEnd;) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, l.blocksEnd - pos), pos);
        if (bytesRead === 0) throw new ArchiveError(`Cannot join xz streams: '${parts[i]}' shrank while read`);
        // A copy: `out` may keep the chunk queued while the next read refills `buf`.
        await writeAll(out, Buffer.from(buf.subarray(0, bytesRead)));
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
    records.push(...l.records);
  }
  const index = encodeIndex(records);
  await writeAll(out, index);
  await writeAll(out, streamFooter(flags, index.length));
  return { uncompressedBytes: records.reduce((n, r) => n + r.uncompressedSize, 0), blocks: records.length };
}
