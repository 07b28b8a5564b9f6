/**
 * Making a delta's compressed parts (buildDelta): `removed.xz` (the `removed` member, known
 * only at the end, compressed as its own block) and the rest, which joined in that order are
 * the delta's one .xz stream (io/xz-container.ts). Three ways, all giving the same bytes:
 *   1. both catalogues known in advance (stored sidecars, catalogue-file.ts): compare and
 *      plan first, then ONE streaming pass over the new image (write.ts); the old image is
 *      never decompressed and nothing is speculated or held;
 *   2. otherwise the one-pass delta (one-pass.ts), with the old catalogue from its sidecar
 *      when there is one (the old image is then not read), else scanning it meanwhile;
 *   3. when the one-pass output is not the canonical delta, a second pass as in 1.
 * Every part is compressed with the same fixed block size (`blockSize`, config
 * `delta_xz_block_mib`), so the compressed file does not depend on the way it was made.
 */
import { createWriteStream } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { DEFAULT_DELTA_XZ_DICT_MIB } from "../../config/load.js";
import type { DeltaMtimePolicy } from "../../config/types.js";
import { errorMessage } from "../../errors.js";
import type { XzCodec } from "../../io/xz.js";
import { GnuTarWriter } from "../tar/write.js";
import type { Catalogue } from "./catalogue.js";
import { compareCatalogues } from "./compare.js";
import type { ImageDiff } from "./compare.js";
import { OnePassDelta } from "./one-pass.js";
import { planMemberOrder } from "./plan.js";
import { deltaTarSize, removedMember, writeMembers } from "./write.js";

/**
 * Default xz block size of a delta (config `delta_xz_block_mib`, default 16). Measured on the
 * Debian phone pair (README, "Delta size"), with similar binaries grouped (plan.ts): 16 MiB
 * blocks are 1.015× the bytes of the reference's one `xz -9` block (8 MiB: 1.042×), so deltas
 * of 32 MiB or more keep two cores busy.
 */
export const DELTA_BLOCK = 16 << 20;

/**
 * Default largest dictionary (config `delta_xz_dict_mib`, default 4). A delta's redundancy is
 * local (neighbouring files of one package, grouped binaries): in ~19 MiB blocks, 16 MiB
 * dictionaries gained only 0.5 % over 4 MiB ones but cost two xz threads 427 instead of 155 MB
 * (the whole import's peak: the 400 MB budget) and 17 % more CPU. Devices need less
 * memory to decompress as well.
 */
export const DELTA_DICT = DEFAULT_DELTA_XZ_DICT_MIB << 20;

/** The dictionary of `blockSize` blocks: the smallest power of two holding one, at most `cap`. */
export function deltaDict(blockSize: number, cap: number): number {
  return Math.min(2 ** Math.max(18, Math.ceil(Math.log2(blockSize))), cap, 64 << 20);
}

export interface BuildOptions {
  codec: XzCodec;
  /** xz preset (reference: 9, §8.3). */
  level: number;
  /** mtime of the `removed` member. */
  now: Date;
  /** An empty directory on the destination's filesystem for the temporary files. */
  tmpDir: string;
  /** xz block size of every part (default DELTA_BLOCK). */
  blockSize?: number;
  /** Largest xz dictionary (default DELTA_DICT); a block smaller than it gets a smaller one. */
  dictSize?: number;
  /** What counts as a change (compare.ts, config `delta_mtime`); default "content". */
  mtime?: DeltaMtimePolicy;
  /** The old image's stored catalogue (null: none or not for these bytes). */
  oldCatalogue?: Promise<Catalogue | null>;
  /** The new image's stored catalogue: with the old one, the delta is planned before any image is read. */
  newCatalogue?: Promise<Catalogue | null>;
  /** Tests: turn one-pass speculation off (one-pass.ts). */
  speculate?: boolean;
}

/** How the delta was made (see the module comment). */
export type DeltaSource = "catalogues" | "old-catalogue" | "images";

/** A delta made, as .xz files whose blocks joined in order are the delta (xz-container.ts). */
export interface BuiltDelta {
  diff: ImageDiff;
  parts: string[];
  uncompressedBytes: number;
  /** Whether the one-pass output was kept (always false for "catalogues"); `why`: what forced a second pass or a fallback. */
  onePass: boolean;
  why?: string;
  source: DeltaSource;
  /** The new image's stored catalogue was given but did not match the image (it should be rewritten). */
  newCatalogueStale?: boolean;
}

async function compressBuffer(
  codec: XzCodec,
  level: number,
  blockSize: number,
  dictCap: number,
  data: Buffer,
  path: string,
): Promise<void> {
  const xz = codec.compress({ level, blockSize, dictSize: deltaDict(blockSize, dictCap) });
  const writing = pipeline(xz, createWriteStream(path, { flags: "wx" }));
  xz.end(data);
  await writing;
}

/**
 * Blocks for a planned delta of `size` bytes: a multiple of the cores in number, as close to
 * `blockSize` as that allows, so every xz thread works until the end (77 MiB in 16 MiB
 * blocks is 5 blocks: the fifth compressed alone while the other core idles; 4 blocks of
 * 19.3 MiB are two full rounds). The dictionary stays that of `blockSize` (memory). A delta
 * of one block or less gets exactly the fixed blocks of the one-pass path (same bytes); a
 * bigger one made in one pass (no stored catalogues: older trees) keeps fixed blocks.
 */
export function plannedBlocks(
  size: number,
  blockSize: number,
  cores = availableParallelism(),
  dictCap = DELTA_DICT,
): { blockSize: number; dictSize: number } {
  const dictSize = deltaDict(blockSize, dictCap);
  // One block either way: the same bytes as a one-pass delta (fixed blocks) of the same pair.
  if (size <= blockSize) return { blockSize, dictSize };
  const rounds = Math.max(1, Math.round(size / (cores * blockSize)));
  const grain = 64 << 10;
  return { blockSize: Math.max(grain, Math.ceil(size / (cores * rounds) / grain) * grain), dictSize };
}

/** `<tag>-removed.xz` + `<tag>.xz` (members written by a planned pass over the new image). */
async function plannedParts(
  newPath: string,
  diff: ImageDiff,
  opts: BuildOptions,
  blockSize: number,
  tag: string,
): Promise<{ parts: string[]; bytes: number }> {
  const head = removedMember(diff.changes.removed, opts.now);
  const first = join(opts.tmpDir, `${tag}-removed.xz`);
  const rest = `${tag}.xz`;
  const dictCap = opts.dictSize ?? DELTA_DICT;
  const xz = opts.codec.compress({ level: opts.level, ...plannedBlocks(deltaTarSize(diff) - head.length, blockSize, undefined, dictCap) });
  const writing = pipeline(xz, createWriteStream(join(opts.tmpDir, rest), { flags: "wx" }));
  const writer = new GnuTarWriter(xz);
  const pass = (async () => {
    try {
      await writeMembers(newPath, diff, writer, opts.tmpDir);
      await writer.finish({ precededBy: head.length });
    } catch (err) {
      xz.destroy();
      throw err;
    }
  })();
  await Promise.all([pass, writing, compressBuffer(opts.codec, opts.level, blockSize, opts.dictSize ?? DELTA_DICT, head, first)]);
  return { parts: [first, join(opts.tmpDir, rest)], bytes: head.length + writer.bytesWritten };
}

/** Makes the delta's parts (see the module comment). The caller joins `parts` and removes `tmpDir`. */
export async function buildDelta(oldPath: string, newPath: string, opts: BuildOptions): Promise<BuiltDelta> {
  const blockSize = opts.blockSize ?? DELTA_BLOCK;
  const policy = opts.mtime ?? "content";
  let fallback: string | undefined;
  if (opts.newCatalogue) {
    const [oldCat, newCat] = await Promise.all([opts.oldCatalogue ?? null, opts.newCatalogue]);
    if (oldCat && newCat) {
      const changes = compareCatalogues(oldCat, newCat, policy);
      const diff: ImageDiff = { oldCat, newCat, changes, order: planMemberOrder(newCat, changes.write) };
      try {
        const { parts, bytes } = await plannedParts(newPath, diff, opts, blockSize, "planned");
        return { diff, parts, uncompressedBytes: bytes, onePass: false, source: "catalogues" };
      } catch (err) {
        // A stored catalogue that does not match the image (members out of order or
        // missing) must not fail the import: read the image instead. A broken image fails
        // the same way below, with the one-pass reader's message.
        fallback = `the stored catalogue of '${newPath}' did not match it: ${errorMessage(err)}`;
      }
    }
  }
  const engine = new OnePassDelta({
    codec: opts.codec,
    level: opts.level,
    blockSize,
    dictSize: deltaDict(blockSize, opts.dictSize ?? DELTA_DICT),
    tmpDir: opts.tmpDir,
    mtime: policy,
    ...(opts.oldCatalogue ? { oldCatalogue: opts.oldCatalogue } : {}),
    ...(opts.speculate !== undefined ? { speculate: opts.speculate } : {}),
  });
  const r = await engine.run(oldPath, newPath);
  const diff: ImageDiff = { oldCat: r.oldCat, newCat: r.newCat, changes: r.changes, order: r.canonical };
  const source: DeltaSource = r.oldFromCatalogue ? "old-catalogue" : "images";
  if (r.complete) {
    const head = removedMember(r.changes.removed, opts.now);
    const first = join(opts.tmpDir, "removed.xz");
    const [rest] = await Promise.all([
      r.finish(head.length),
      compressBuffer(opts.codec, opts.level, blockSize, opts.dictSize ?? DELTA_DICT, head, first),
    ]);
    return {
      diff,
      parts: [first, join(opts.tmpDir, "rest.xz")],
      uncompressedBytes: head.length + rest,
      onePass: true,
      source,
      ...(fallback ? { why: fallback, newCatalogueStale: true } : {}),
    };
  }
  await r.abort();
  const { parts, bytes } = await plannedParts(newPath, diff, opts, blockSize, "second-pass");
  const why = [fallback, r.why].filter(Boolean).join("; ");
  return {
    diff,
    parts,
    uncompressedBytes: bytes,
    onePass: false,
    source,
    ...(why ? { why } : {}),
    ...(fallback ? { newCatalogueStale: true } : {}),
  };
}
