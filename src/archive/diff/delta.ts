/**
 * Making a delta tarball (server-reference §6.4, §5.7).
 *
 * Normally in ONE pass over each image (buildDelta, one-pass.ts): the old image is scanned
 * while the new one is read once and its members are streamed through the GNU tar writer
 * into xz as soon as they are decided; the `removed` member, which must come first but is
 * known only at the end, is compressed as its own xz block and put in front when the final
 * .xz stream is assembled (io/xz-container.ts).
 *
 * The two-pass path (diffImages + writeDeltaTar) remains: 1. scan both images into
 * catalogues; 2. plan (compare.ts, plan.ts), then re-read the new image into the writer. It
 * is the fallback when the one-pass output is not the canonical delta (one-pass.ts).
 * Nothing but per-entry metadata and a bounded amount of held content is kept in memory; no
 * uncompressed tarball touches the disk.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ArchiveError } from "../../errors.js";
import { HashingStream } from "../../io/hashing.js";
import { defaultCodec, type XzCodec } from "../../io/xz.js";
import { joinXzStreams } from "../../io/xz-container.js";
import { readTar } from "../tar/read.js";
import type { TarHeader } from "../tar/types.js";
import { BLOCK } from "../tar/header.js";
import { encodeGnuHeader, GnuTarWriter } from "../tar/write.js";
import type { Catalogue } from "./catalogue.js";
import { compareCatalogues, type ChangeSet } from "./compare.js";
import { OnePassDelta } from "./one-pass.js";
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
  /** Tests: turn one-pass speculation off (one-pass.ts). */
  speculate?: boolean;
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

export interface BuildOptions {
  codec: XzCodec;
  /** xz preset (reference: 9, §8.3). */
  level: number;
  /** mtime of the `removed` member. */
  now: Date;
  /** An empty directory on the destination's filesystem for the temporary files. */
  tmpDir: string;
  /** Tests: turn one-pass speculation off (one-pass.ts). */
  speculate?: boolean;
}

/** A delta made, as .xz files whose blocks joined in order are the delta (xz-container.ts). */
export interface BuiltDelta {
  diff: ImageDiff;
  parts: string[];
  uncompressedBytes: number;
  /** Whether the one-pass output was kept; else `why` the second pass was needed. */
  onePass: boolean;
  why?: string;
}

/**
 * xz block size of the one-pass delta, whose size is unknown until the end: 2 MiB with a
 * 2 MiB dictionary, so every delta of 4 MiB or more keeps both cores busy. Measured on the
 * bench's 19 MB delta (2 threads, preset 9): 3 MiB blocks (4 MiB dictionary) are 1.3 %
 * smaller but take 84 MB of xz memory instead of 55 MB and 14 % more CPU; with them the
 * import's process tree peaked at 302 MB on a 900 MB image (target: 300, issue 8).
 */
export const DELTA_BLOCK = 2 << 20;

async function compressBuffer(codec: XzCodec, level: number, data: Buffer, path: string): Promise<void> {
  const xz = codec.compress({ level, sizeHint: data.length });
  const writing = pipeline(xz, createWriteStream(path, { flags: "wx" }));
  xz.end(data);
  await writing;
}

/**
 * Makes the delta in one pass over each image (one-pass.ts): everything after `removed`
 * is compressed while the images are read; then `removed`, known only at the end, is
 * compressed as its own block. Falls back to the second pass when the one-pass output is not
 * the canonical delta. The caller joins `parts` into the final file and removes `tmpDir`.
 */
export async function buildDelta(oldPath: string, newPath: string, opts: BuildOptions): Promise<BuiltDelta> {
  const engine = new OnePassDelta({ codec: opts.codec, level: opts.level, blockSize: DELTA_BLOCK, tmpDir: opts.tmpDir, ...(opts.speculate !== undefined ? { speculate: opts.speculate } : {}) });
  const r = await engine.run(oldPath, newPath);
  const { changes } = r;
  const diff: ImageDiff = { oldCat: r.oldCat, newCat: r.newCat, changes, order: r.canonical };
  const removed = removedContent(changes.removed);
  if (r.complete) {
    const head = Buffer.concat([encodeGnuHeader(removedHeader(removed, opts.now)), removed, Buffer.alloc((BLOCK - (removed.length % BLOCK)) % BLOCK)]);
    const first = join(opts.tmpDir, "removed.xz");
    const [rest] = await Promise.all([r.finish(head.length), compressBuffer(opts.codec, opts.level, head, first)]);
    const uncompressedBytes = head.length + rest;
    return { diff, parts: [first, join(opts.tmpDir, "rest.xz")], uncompressedBytes, onePass: true };
  }
  await r.abort();
  const whole = join(opts.tmpDir, "second-pass.xz");
  const xz = opts.codec.compress({ level: opts.level, sizeHint: deltaTarSize(diff) });
  const [bytes] = await Promise.all([writeDeltaTar(newPath, diff, xz, opts.now), pipeline(xz, createWriteStream(whole, { flags: "wx" }))]);
  return { diff, parts: [whole], uncompressedBytes: bytes, onePass: false, ...(r.why ? { why: r.why } : {}) };
}

/** Makes `outPath` (xz-compressed delta) from two image files; atomic rename at the end. */
export async function makeDelta(oldPath: string, newPath: string, outPath: string, opts: DeltaOptions = {}): Promise<DeltaSummary & { onePass: boolean; why?: string }> {
  const tmpDir = await mkdtemp(join(dirname(outPath), `.${basename(outPath)}.tmp-`));
  const tmp = join(tmpDir, "delta.tar.xz");
  try {
    const built = await buildDelta(oldPath, newPath, { codec: defaultCodec(), level: opts.xzLevel ?? 9, now: opts.now ?? new Date(), tmpDir, ...(opts.speculate !== undefined ? { speculate: opts.speculate } : {}) });
    const hasher = new HashingStream();
    const file = createWriteStream(tmp, { flags: "wx" });
    const written = pipeline(hasher, file);
    await joinXzStreams(built.parts, hasher);
    hasher.end();
    await written;
    await rename(tmp, outPath);
    const { changes } = built.diff;
    return {
      path: outPath,
      added: changes.added.length,
      changed: changes.changed.length,
      deleted: changes.deleted.length,
      removedLines: changes.removed.length,
      members: built.diff.order.length,
      uncompressedBytes: built.uncompressedBytes,
      compressedBytes: hasher.bytes,
      sha256: hasher.sha256,
      warnings: changes.warnings,
      changes,
      onePass: built.onePass,
      ...(built.why ? { why: built.why } : {}),
    };
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}
