/**
 * Making a delta tarball (server-reference §6.4, §5.7) in two streaming passes:
 *   1. read the old and the new image concurrently (each with its own decompressor) into
 *      catalogues of metadata + SHA-256;
 *   2. plan (pure: compare.ts, plan.ts), then re-read the new image and stream the planned
 *      members straight into the GNU tar writer -> xz -> a temporary file in the destination
 *      directory, renamed into place when complete.
 * Nothing but per-entry metadata is kept in memory; no uncompressed tarball touches the disk.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ArchiveError } from "../../errors.js";
import { HashingStream } from "../../io/hashing.js";
import { defaultCodec } from "../../io/xz.js";
import { readTar } from "../tar/read.js";
import type { TarHeader } from "../tar/types.js";
import { GnuTarWriter } from "../tar/write.js";
import type { Catalogue } from "./catalogue.js";
import { compareCatalogues, type ChangeSet } from "./compare.js";
import { planMemberOrder, removedContent } from "./plan.js";
import { openImageTar, scanImage } from "./scan.js";

export interface ImageDiff {
  oldCat: Catalogue;
  newCat: Catalogue;
  changes: ChangeSet;
  /** Members after `removed`, in delta order. */
  order: string[];
}

export interface DeltaSummary {
  path: string;
  added: number;
  changed: number;
  deleted: number;
  /** Lines in the `removed` member. */
  removedLines: number;
  /** Members written after `removed`. */
  members: number;
  uncompressedBytes: number;
  compressedBytes: number;
  sha256: string;
  warnings: string[];
  /** The full classification, for listings. */
  changes: ChangeSet;
}

export interface DeltaOptions {
  /** xz preset (reference: 9, §8.3). */
  xzLevel?: number;
  /** mtime of the `removed` member (default: now). */
  now?: Date;
}

/** Pass 1 and the plan. */
export async function diffImages(oldPath: string, newPath: string): Promise<ImageDiff> {
  const [oldCat, newCat] = await Promise.all([scanImage(oldPath), scanImage(newPath)]);
  const changes = compareCatalogues(oldCat, newCat);
  return { oldCat, newCat, changes, order: planMemberOrder(newCat, changes.write) };
}

/** The `removed` member (§6.4): regular file, 0644, root:root, mtime now. */
export function removedHeader(content: Buffer, now: Date): TarHeader {
  return {
    name: "removed",
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: "root",
    gname: "root",
    mtime: Math.floor(now.getTime() / 1000),
    size: content.length,
    typeflag: "0",
  };
}

/** Pass 2: writes the uncompressed delta tar to `out` (ended when done); returns its size. */
export async function writeDeltaTar(newPath: string, diff: ImageDiff, out: Writable, now = new Date()): Promise<number> {
  const writer = new GnuTarWriter(out);
  const removed = removedContent(diff.changes.removed);
  await writer.add(removedHeader(removed, now), removed);

  const { order, newCat } = diff;
  const wanted = new Set(order);
  const held = new Map<string, TarHeader>();
  let next = 0;
  const flushHeld = async (): Promise<void> => {
    while (next < order.length && held.has(order[next]!)) {
      const name = order[next++]!;
      await writer.add(held.get(name)!);
      held.delete(name);
    }
  };
  let ordinal = 0;
  for await (const { header, body } of readTar(await openImageTar(newPath))) {
    const i = ordinal++;
    // Only the last occurrence of a path counts (§6.1); the reader drains skipped bodies.
    if (!wanted.has(header.name) || newCat.get(header.name)?.ordinal !== i) continue;
    if (order[next] === header.name) {
      next++;
      await writer.add(header, body);
      await flushHeld();
    } else if (header.size === 0) {
      held.set(header.name, header); // a hard link waiting for its target (plan.ts)
    } else {
      throw new ArchiveError(`Cannot write delta: '${header.name}' is out of order in '${newPath}'`);
    }
  }
  await flushHeld();
  if (next !== order.length) {
    throw new ArchiveError(`Cannot write delta: '${newPath}' changed while it was read ('${order[next]}' is missing)`);
  }
  await writer.finish();
  return writer.bytesWritten;
}

const BLOCK = 512;
const RECORD = 20 * BLOCK;
const blocks = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/**
 * The size of the tar writeDeltaTar will write for `diff`, from the plan alone: known before
 * the first byte, it sizes the xz blocks so both cores compress (xz.ts, blockPlan).
 * GNU long-name records are counted; exact for archives the writer can write at all.
 */
export function deltaTarSize(diff: ImageDiff): number {
  const longRecord = (s: string) => (Buffer.byteLength(s, "utf8") > 100 ? BLOCK + blocks(Buffer.byteLength(s, "utf8") + 1) : 0);
  let n = BLOCK + blocks(removedContent(diff.changes.removed).length);
  for (const name of diff.order) {
    const e = diff.newCat.get(name)!;
    const link = e.type === "link" || e.type === "symlink" ? (e.linkname ?? "") : "";
    n += BLOCK + longRecord(e.type === "directory" ? `${name}/` : name) + longRecord(link) + (e.type === "file" ? blocks(e.size) : 0);
  }
  n += 2 * BLOCK;
  return n + ((RECORD - (n % RECORD)) % RECORD);
}

/** §1.2: `<T>.delta-<S>.tar.xz`, T and S the basenames with every ".tar.xz" removed. */
export function deltaFileName(sourcePath: string, targetPath: string): string {
  const strip = (p: string) => basename(p).replaceAll(".tar.xz", "");
  return `${strip(targetPath)}.delta-${strip(sourcePath)}.tar.xz`;
}

/** Makes `outPath` (xz-compressed delta) from two image files; atomic rename at the end. */
export async function makeDelta(oldPath: string, newPath: string, outPath: string, opts: DeltaOptions = {}): Promise<DeltaSummary> {
  const diff = await diffImages(oldPath, newPath);
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const compressor = defaultCodec().compress({ level: opts.xzLevel ?? 9, sizeHint: deltaTarSize(diff) });
  const hasher = new HashingStream();
  const file = createWriteStream(tmp, { flags: "wx" });
  const written = pipeline(compressor, hasher, file);
  let uncompressedBytes: number;
  try {
    const [bytes] = await Promise.all([writeDeltaTar(newPath, diff, compressor, opts.now), written]);
    uncompressedBytes = bytes;
    await rename(tmp, outPath);
  } catch (err) {
    compressor.destroy();
    await written.catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const { changes } = diff;
  return {
    path: outPath,
    added: changes.added.length,
    changed: changes.changed.length,
    deleted: changes.deleted.length,
    removedLines: changes.removed.length,
    members: diff.order.length,
    uncompressedBytes,
    compressedBytes: hasher.bytes,
    sha256: hasher.sha256,
    warnings: changes.warnings,
    changes,
  };
}
