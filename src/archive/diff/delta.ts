/**
 * Making a delta tarball (server-reference §6.4, §5.7): the types, the two-pass diff
 * (diffImages: scan both images, then plan), and makeDelta, which writes one delta file.
 * The parts are made by build.ts (catalogues, one pass, or the second pass) and written by
 * write.ts; the `removed` member, known only at the end, is its own xz block put in front
 * when the final .xz stream is assembled (io/xz-container.ts). Nothing but per-entry
 * metadata and a bounded amount of held content is kept in memory; no uncompressed tarball
 * touches the disk.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { DeltaMtimePolicy } from "../../config/types.js";
import { HashingStream } from "../../io/hashing.js";
import { defaultCodec } from "../../io/xz.js";
import { joinXzStreams } from "../../io/xz-container.js";
import { buildDelta, type DeltaSource } from "./build.js";
import type { Catalogue } from "./catalogue.js";
import { compareCatalogues, type ChangeSet, type ImageDiff } from "./compare.js";
import { planMemberOrder } from "./plan.js";
import { scanImage } from "./scan.js";

export { buildDelta, DELTA_BLOCK, type BuildOptions, type BuiltDelta, type DeltaSource } from "./build.js";
export { deltaTarSize, removedHeader, removedMember, writeDeltaTar, writeMembers } from "./write.js";
export type { ImageDiff } from "./compare.js";

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
  /** What counts as a change (compare.ts); default "content". */
  mtime?: DeltaMtimePolicy;
  /** xz block size in bytes (default DELTA_BLOCK, 16 MiB: build.ts). */
  blockSize?: number;
  /** Largest xz dictionary in bytes (default DELTA_DICT, 4 MiB: build.ts). */
  dictSize?: number;
  /** Stored catalogues (catalogue-file.ts), as buildDelta takes them. */
  oldCatalogue?: Promise<Catalogue | null>;
  newCatalogue?: Promise<Catalogue | null>;
}

/** Pass 1 and the plan. */
export async function diffImages(oldPath: string, newPath: string, policy: DeltaMtimePolicy = "content"): Promise<ImageDiff> {
  const [oldCat, newCat] = await Promise.all([scanImage(oldPath), scanImage(newPath)]);
  const changes = compareCatalogues(oldCat, newCat, policy);
  return { oldCat, newCat, changes, order: planMemberOrder(newCat, changes.write) };
}

/** §1.2: `<T>.delta-<S>.tar.xz`, T and S the basenames with every ".tar.xz" removed. */
export function deltaFileName(sourcePath: string, targetPath: string): string {
  const strip = (p: string) => basename(p).replaceAll(".tar.xz", "");
  return `${strip(targetPath)}.delta-${strip(sourcePath)}.tar.xz`;
}

/** Makes `outPath` (xz-compressed delta) from two image files; atomic rename at the end. */
export async function makeDelta(
  oldPath: string,
  newPath: string,
  outPath: string,
  opts: DeltaOptions = {},
): Promise<DeltaSummary & { onePass: boolean; why?: string; source: DeltaSource }> {
  const tmpDir = await mkdtemp(join(dirname(outPath), `.${basename(outPath)}.tmp-`));
  const tmp = join(tmpDir, "delta.tar.xz");
  try {
    const { xzLevel, now, ...rest } = opts;
    const built = await buildDelta(oldPath, newPath, {
      ...rest,
      codec: defaultCodec(),
      level: xzLevel ?? 9,
      now: now ?? new Date(),
      tmpDir,
    });
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
      source: built.source,
      ...(built.why ? { why: built.why } : {}),
    };
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}
