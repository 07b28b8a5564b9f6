/**
 * GNU-format tar writer: "ustar  \0" headers, GNU 'L'/'K' records for names and link names
 * longer than 100 bytes, base-256 for numbers octal cannot hold. Never pax: the recovery's
 * busybox tar fails on pax headers with "bad header" (server-reference §11, 2020-12).
 */
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import { ArchiveError } from "../../errors.js";
import { BLOCK, F, GNU_MAGIC, sealChecksum, writeNumber, writeString } from "./header.js";
import { TYPEFLAG, type TarHeader } from "./types.js";

/** GNU tar and Python both pad the archive to a 20-block record. */
const RECORD = 20 * BLOCK;
const ZEROS = Buffer.alloc(RECORD);

function fieldFits(s: string, len: number): boolean {
  return Buffer.byteLength(s, "utf8") <= len;
}

/** A bare GNU header block (no checksum yet). */
function baseBlock(name: string, typeflag: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  const bytes = Buffer.from(name, "utf8");
  bytes.copy(block, 0, 0, Math.min(100, bytes.length)); // long names: truncated here, whole in 'L'
  block.write(typeflag, 156, 1, "latin1");
  GNU_MAGIC.copy(block, 257);
  return block;
}

/** A GNU ././@LongLink record carrying `value` (+ NUL) for the next header. */
function longRecord(flag: "L" | "K", value: string): Buffer {
  const data = Buffer.from(value + "\0", "utf8");
  const block = baseBlock("././@LongLink", flag);
  // Same fields GNU tar 1.3x writes for these records.
  writeNumber(block, F.mode, 0o644);
  writeNumber(block, F.uid, 0);
  writeNumber(block, F.gid, 0);
  writeNumber(block, F.size, data.length);
  writeNumber(block, F.mtime, 0);
  writeString(block, F.uname, "root");
  writeString(block, F.gname, "root");
  sealChecksum(block);
  return Buffer.concat([block, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

function typeflagOf(h: TarHeader): string {
  if (h.type === "file" && h.typeflag !== undefined && ["0", "\0", "7"].includes(h.typeflag)) return h.typeflag;
  return TYPEFLAG[h.type];
}

/** Header blocks (long-name records first) for one member. */
export function encodeGnuHeader(h: TarHeader): Buffer {
  const typeflag = typeflagOf(h);
  const name = h.type === "directory" ? `${h.name}/` : h.name;
  if (!name) throw new ArchiveError(`Cannot write tar member: empty name`);
  const size = h.type === "file" ? h.size : 0;
  const linkname = h.type === "link" || h.type === "symlink" ? (h.linkname ?? "") : "";
  if ((h.type === "link" || h.type === "symlink") && !linkname) {
    throw new ArchiveError(`Cannot write tar member '${h.name}': ${h.type} without a target`);
  }
  for (const [field, value] of [
    ["uname", h.uname],
    ["gname", h.gname],
  ] as const) {
    if (!fieldFits(value, 32)) throw new ArchiveError(`Cannot write tar member '${h.name}': ${field} '${value}' is longer than 32 bytes`);
  }
  const parts: Buffer[] = [];
  if (!fieldFits(linkname, 100)) parts.push(longRecord("K", linkname));
  if (!fieldFits(name, 100)) parts.push(longRecord("L", name));
  const block = baseBlock(name, typeflag);
  writeNumber(block, F.mode, h.mode & 0o7777);
  writeNumber(block, F.uid, h.uid);
  writeNumber(block, F.gid, h.gid);
  writeNumber(block, F.size, size);
  writeNumber(block, F.mtime, Math.floor(h.mtime));
  const lb = Buffer.from(linkname, "utf8");
  lb.copy(block, F.linkname[0], 0, Math.min(100, lb.length));
  writeString(block, F.uname, h.uname);
  writeString(block, F.gname, h.gname);
  if (h.type === "character-device" || h.type === "block-device") {
    writeNumber(block, F.devmajor, h.devmajor ?? 0);
    writeNumber(block, F.devminor, h.devminor ?? 0);
  }
  sealChecksum(block);
  parts.push(block);
  return parts.length === 1 ? block : Buffer.concat(parts);
}

/** Streams GNU tar members to `out`, honouring its backpressure. */
export class GnuTarWriter {
  private written = 0;
  private failed: Error | undefined;

  constructor(private readonly out: Writable) {
    out.on("error", (err: Error) => {
      this.failed ??= err;
    });
  }

  /** Uncompressed bytes written so far. */
  get bytesWritten(): number {
    return this.written;
  }

  /** The output's error, if it failed (it may fail during any await). */
  private throwIfFailed(): void {
    if (this.failed) throw this.failed;
  }

  private async write(buf: Buffer): Promise<void> {
    this.throwIfFailed();
    this.written += buf.length;
    if (!this.out.write(buf)) {
      await this.drained();
      this.throwIfFailed();
      if (this.out.destroyed) throw new ArchiveError("Cannot write tar archive: the output was closed");
    }
  }

  /**
   * Waits for "drain" or "close", removing both listeners afterwards (`events.once` in a
   * race leaves the loser attached: thousands of members made a MaxListenersExceeded leak).
   */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.out.off("drain", done);
        this.out.off("close", done);
        resolve();
      };
      this.out.on("drain", done);
      this.out.on("close", done);
    });
  }

  /** Adds one member; for a regular file `content` (bytes or chunks) must hold exactly `header.size` bytes. */
  async add(header: TarHeader, content?: Buffer | Readable | AsyncIterable<Buffer>): Promise<void> {
    await this.write(encodeGnuHeader(header));
    const size = header.type === "file" ? header.size : 0;
    let got = 0;
    if (content !== undefined && header.type === "file") {
      if (Buffer.isBuffer(content)) {
        got = content.length;
        if (got === size) await this.write(content);
      } else {
        for await (const chunk of content as AsyncIterable<Buffer>) {
          got += chunk.length;
          if (got > size) break;
          await this.write(chunk);
        }
      }
    }
    if (got !== size) {
      throw new ArchiveError(
        `Cannot write tar member '${header.name}': header size ${size} but content has ${got}${got > size ? "+" : ""} bytes`,
      );
    }
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await this.write(ZEROS.subarray(0, pad));
  }

  /**
   * Writes the end-of-archive blocks (padded to a full record) and, by default, ends `out`.
   * `precededBy`: bytes of the same archive written elsewhere before this writer's first
   * (a delta's `removed` member, compressed on its own), counted for the record padding.
   */
  async finish({ end = true, precededBy = 0 }: { end?: boolean; precededBy?: number } = {}): Promise<void> {
    const trailer = 2 * BLOCK;
    const total = precededBy + this.written + trailer;
    await this.write(ZEROS.subarray(0, trailer + ((RECORD - (total % RECORD)) % RECORD)));
    if (end) {
      const finished = once(this.out, "finish");
      this.out.end();
      await finished;
      this.throwIfFailed();
    }
  }
}
