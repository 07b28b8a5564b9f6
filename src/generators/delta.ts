/**
 * `generate_delta` (server-reference §5.7): `pool/<T>.delta-<S>.tar.xz` from a source and a
 * target image, made once (an existing file is the cache). Version, keyring and boot pairs
 * are never diffed: the full target is shipped instead (§5.6).
 *
 * The delta is made from the images' stored catalogues when they exist (neither image is
 * scanned; the old one is never decompressed), else in one pass over each image
 * (archive/diff/build.ts), into compressed parts in a pool temporary directory; publishing
 * joins them into one .xz stream while hashing and signing it (pool.ts). Catalogues that had
 * to be scanned are recorded next to their pool files for the next delta (stored.ts).
 *
 * The mtime policy (config `delta_mtime`, of the channel the delta is published in) changes
 * the delta's content, and the pool file name is the cache: an "exact" delta is named
 * `<T>.delta-<S>.exact.tar.xz`, so channels with different policies sharing the pool never
 * reuse each other's delta. "content", the default, keeps the reference's name. A pool
 * file is never rewritten once published (§8.3: other indexes hold its checksum), so
 * "regenerate on mismatch" under one name was not an option.
 */
import { basename } from "node:path";
import { buildDelta } from "../archive/diff/index.js";
import { storedCatalogues } from "../archive/diff/stored.js";
import { DEFAULT_DELTA_XZ_BLOCK_MIB, DEFAULT_DELTA_XZ_DICT_MIB } from "../config/load.js";
import type { DeltaMtimePolicy } from "../config/types.js";
import { GeneratorError, SiError, errorMessage } from "../errors.js";
import { joinXzStreams } from "../io/xz-container.js";
import { showFileReadProgress } from "../io/progress.js";
import { deltaName, stripTarXz } from "../model/naming.js";
import { exists, poolPath, publishPoolFile, readSidecar, withPoolTemp } from "./pool.js";
import type { GeneratorContext } from "./types.js";

/** Pairs shipped whole: both names start with one of these. */
const NEVER_DIFFED = ["version-", "keyring-", "boot-"];

export interface DeltaRequest {
  /** What counts as a change (compare.ts); default: `[global] delta_mtime`. */
  mtime?: DeltaMtimePolicy;
}

/** Pool basename of the delta under a policy (see the module comment). */
export function deltaPoolName(sourcePath: string, targetPath: string, policy: DeltaMtimePolicy): string {
  const name = deltaName(sourcePath, targetPath);
  return policy === "exact" ? `${name.slice(0, -".tar.xz".length)}.exact.tar.xz` : name;
}

/** The delta from `sourcePath` to `targetPath` (real path), or `targetPath` for pairs never diffed. */
export async function generateDelta(
  ctx: GeneratorContext,
  sourcePath: string,
  targetPath: string,
  req: DeltaRequest = {},
): Promise<string> {
  const s = stripTarXz(basename(sourcePath));
  const t = stripTarXz(basename(targetPath));
  if (NEVER_DIFFED.some((p) => s.startsWith(p) && t.startsWith(p))) return targetPath;
  const mtime = req.mtime ?? ctx.config.delta_mtime ?? "content";
  const path = poolPath(ctx, deltaPoolName(sourcePath, targetPath, mtime));
  if (exists(path)) return path; // metadata not checked (§5.7 step 3)
  try {
    await withPoolTemp(ctx, async (tmpDir) => {
      const stored = storedCatalogues(sourcePath, targetPath, (p) => ctx.checksums.get(p)?.sha256);
      // On a terminal: how much of the new image has been read (issue 15 item 6).
      const stopProgress = showFileReadProgress(targetPath, `delta ${t}`);
      const built = await buildDelta(sourcePath, targetPath, {
        codec: ctx.codec,
        level: ctx.config.xz_level,
        now: ctx.clock(),
        tmpDir,
        mtime,
        blockSize: (ctx.config.delta_xz_block_mib ?? DEFAULT_DELTA_XZ_BLOCK_MIB) * 2 ** 20,
        dictSize: (ctx.config.delta_xz_dict_mib ?? DEFAULT_DELTA_XZ_DICT_MIB) * 2 ** 20,
        oldCatalogue: stored.old,
        ...(stored.new ? { newCatalogue: stored.new } : {}),
      }).finally(stopProgress);
      const sidecar = { generator: "delta", source: (await readSidecar(sourcePath)) ?? {}, target: (await readSidecar(targetPath)) ?? {} };
      await publishPoolFile(
        async (out) => {
          await joinXzStreams(built.parts, out);
          out.end();
        },
        path,
        ctx,
        { sidecar },
      );
      for (const w of built.diff.changes.warnings) ctx.log(`W: ${basename(path)}: ${w}`);
      if (built.source === "catalogues") ctx.log(`I: ${basename(path)}: planned from both images' stored catalogues`);
      else if (!built.onePass)
        ctx.log(`I: ${basename(path)}: made in two passes: ${built.why ?? "the one-pass output was not the canonical delta"}`);
      else if (built.why) ctx.log(`W: ${basename(path)}: ${built.why}`);
      for (const w of await stored.record(built)) ctx.log(`W: ${basename(path)}: ${w}`);
    });
  } catch (err) {
    const kind = err instanceof SiError ? err.kind : "Exception";
    throw new GeneratorError(`Cannot generate delta ${basename(path)}: ${errorMessage(err)}`, kind, { cause: err });
  }
  ctx.log(`I: wrote ${path}`);
  return path;
}
