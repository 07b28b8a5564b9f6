/**
 * `generate_delta` (server-reference §5.7): `pool/<T>.delta-<S>.tar.xz` from a source and a
 * target image, made once (an existing file is the cache). Version, keyring and boot pairs
 * are never diffed: the full target is shipped instead (§5.6).
 */
import { basename } from "node:path";
import { deltaTarSize, diffImages, writeDeltaTar } from "../archive/diff/index.js";
import { GeneratorError, SiError, errorMessage } from "../errors.js";
import { deltaName, stripTarXz } from "../model/naming.js";
import { exists, poolPath, publishPoolFile, readSidecar, xzProducer } from "./pool.js";
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
    const diff = await diffImages(sourcePath, targetPath);
    const sidecar = { generator: "delta", source: (await readSidecar(sourcePath)) ?? {}, target: (await readSidecar(targetPath)) ?? {} };
    await publishPoolFile(
      xzProducer(ctx, (xz) => writeDeltaTar(targetPath, diff, xz, ctx.clock()), { sizeHint: deltaTarSize(diff) }),
      path,
      ctx,
      { sidecar },
    );
    for (const w of diff.changes.warnings) ctx.log(`W: ${basename(path)}: ${w}`);
  } catch (err) {
    const kind = err instanceof SiError ? err.kind : "Exception";
    throw new GeneratorError(`Cannot generate delta ${basename(path)}: ${errorMessage(err)}`, kind, { cause: err });
  }
  ctx.log(`I: wrote ${path}`);
  return path;
}
