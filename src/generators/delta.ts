/**
 * `generate_delta` (server-reference §5.7): `pool/<T>.delta-<S>.tar.xz` from a source and a
 * target image, made once (an existing file is the cache). Version, keyring and boot pairs
 * are never diffed: the full target is shipped instead (§5.6).
 *
 * The delta is made in one pass over each image (archive/diff/delta.ts, buildDelta) into
 * compressed parts in a pool temporary directory; publishing joins them into one .xz stream
 * while hashing and signing it (pool.ts).
 */
import { basename } from "node:path";
import { buildDelta } from "../archive/diff/index.js";
import { GeneratorError, SiError, errorMessage } from "../errors.js";
import { joinXzStreams } from "../io/xz-container.js";
import { deltaName, stripTarXz } from "../model/naming.js";
import { exists, poolPath, publishPoolFile, readSidecar, withPoolTemp } from "./pool.js";
import type { GeneratorContext } from "./types.js";

/** Pairs shipped whole: both names start with one of these. */
const NEVER_DIFFED = ["version-", "keyring-", "boot-"];

/** The delta from `sourcePath` to `targetPath` (real path), or `targetPath` for pairs never diffed. */
export async function generateDelta(ctx: GeneratorContext, sourcePath: string, targetPath: string): Promise<string> {
  const s = stripTarXz(basename(sourcePath));
  const t = stripTarXz(basename(targetPath));
  if (NEVER_DIFFED.some((p) => s.startsWith(p) && t.startsWith(p))) return targetPath;
  const path = poolPath(ctx, deltaName(sourcePath, targetPath));
  if (exists(path)) return path; // metadata not checked (§5.7 step 3)
  try {
    await withPoolTemp(ctx, async (tmpDir) => {
      const built = await buildDelta(sourcePath, targetPath, { codec: ctx.codec, level: ctx.config.xz_level, now: ctx.clock(), tmpDir });
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
      if (!built.onePass) ctx.log(`I: ${basename(path)}: made in two passes: ${built.why ?? "the one-pass output was not the canonical delta"}`);
    });
  } catch (err) {
    const kind = err instanceof SiError ? err.kind : "Exception";
    throw new GeneratorError(`Cannot generate delta ${basename(path)}: ${errorMessage(err)}`, kind, { cause: err });
  }
  ctx.log(`I: wrote ${path}`);
  return path;
}
