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
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { DeltaMtimePolicy } from "../../config/types.js";
import { errorMessage } from "../../errors.js";
import type { XzCodec } from "../../io/xz.js";
import { GnuTarWriter } from "../tar/write.js";
import type { Catalogue } from "./catalogue.js";
import { compareCatalogues } from "./compare.js";
import type { ImageDiff } from "./delta.js";
import { OnePassDelta } from "./one-pass.js";
import { planMemberOrder } from "./plan.js";
import { removedMember, writeMembers } from "./write.js";

/**
 * Default xz block size of a delta (config `delta_xz_block_mib`, default 2): the dictionary
 * is the smallest power of two holding a block (xz.ts), so 2 MiB blocks keep two xz threads
 * near 55 MB and every delta of 4 MiB or more keeps both cores busy. Larger blocks compress
 * better and cost memory (the measured curve: README, bench).
 */
export const DELTA_BLOCK = 2 << 20;

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

async function compressBuffer(codec: XzCodec, level: number, blockSize: number, data: Buffer, path: string): Promise<void> {
  const xz = codec.compress({ level, blockSize });
  const writing = pipeline(xz, createWriteStream(path, { flags: "wx" }));
  xz.end(data);
  await writing;
}

/** `<tag>-removed.xz` + `<tag>.xz` (members written by a planned pass over the new image). */
async function plannedParts(newPath: string, diff: ImageDiff, opts: BuildOptions, blockSize: number, tag: string): Promise<{ parts: string[]; bytes: number }> {
  const head = removedMember(diff.changes.removed, opts.now);
  const first = join(opts.tmpDir, `${tag}-removed.xz`);
  const rest = `${tag}.xz`;
  const xz = opts.codec.compress({ level: opts.level, blockSize });
  const writing = pipeline(xz, createWriteStream(join(opts.tmpDir, rest), { flags: "wx" }));
  const writer = new GnuTarWriter(xz);
  const pass = (async () => {
    try {
      await writeMembers(newPath, diff, writer);
      await writer.finish({ precededBy: head.length });
    } catch (err) {
      xz.destroy();
      throw err;
    }
  })();
  await Promise.all([pass, writing, compressBuffer(opts.codec, opts.level, blockSize, head, first)]);
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
    const [rest] = await Promise.all([r.finish(head.length), compressBuffer(opts.codec, opts.level, blockSize, head, first)]);
    return { diff, parts: [first, join(opts.tmpDir, "rest.xz")], uncompressedBytes: head.length + rest, onePass: true, source, ...(fallback ? { why: fallback, newCatalogueStale: true } : {}) };
  }
  await r.abort();
  const { parts, bytes } = await plannedParts(newPath, diff, opts, blockSize, "second-pass");
  const why = [fallback, r.why].filter(Boolean).join("; ");
  return { diff, parts, uncompressedBytes: bytes, onePass: false, source, ...(why ? { why } : {}), ...(fallback ? { newCatalogueStale: true } : {}) };
}
