/**
 * The stored catalogues of a delta's two images (catalogue-file.ts, issue 19): read them so
 * the delta needs neither image's catalogue scanned, and record the ones that were missing
 * once a delta had to scan for them (trees made by older versions or by the reference).
 *
 * A catalogue counts only for the bytes it was made from: its recorded SHA-256 must be the
 * pool file's. That digest comes from what the caller already knows (the run's checksums,
 * or the index entry devices verified: the catalogue must describe the image they hold),
 * else the compressed file is hashed (~0.5 s for 200 MB), concurrently with the delta.
 */
import { createReadStream, existsSync } from "node:fs";
import { hashStream } from "../../io/hashing.js";
import type { BuiltDelta } from "./build.js";
import type { Catalogue } from "./catalogue.js";
import { catalogueSidecarPath, readCatalogueFile, writeCatalogueFile } from "./catalogue-file.js";

export interface StoredCatalogues {
  /** Old image's stored catalogue (null: none, damaged, or made for other bytes). */
  old: Promise<Catalogue | null>;
  /** New image's stored catalogue; undefined when it has no sidecar at all. */
  new?: Promise<Catalogue | null>;
  /** Records what `built` had to scan; returns a warning per sidecar it could not write. */
  record(built: BuiltDelta): Promise<string[]>;
}

/** SHA-256 of a file, `known` when given (lazily computed once otherwise). */
function digestOf(path: string, known: string | undefined): () => Promise<string> {
  let p: Promise<string> | undefined = known === undefined ? undefined : Promise.resolve(known);
  return () => (p ??= hashStream(createReadStream(path)).then((h) => h.sha256));
}

/**
 * Starts reading the stored catalogues of `source` and `target` (pool files). `known` gives
 * a file's SHA-256 when the caller has it. Nothing is awaited here.
 */
export function storedCatalogues(source: string, target: string, known: (path: string) => string | undefined): StoredCatalogues {
  const sourceSha = digestOf(source, known(source));
  const targetSha = digestOf(target, known(target));
  // The source's digest is needed either way: to check its catalogue, or to record one.
  const srcSha = sourceSha();
  srcSha.catch(() => undefined); // a missing file: the delta reports it while reading the image
  const old = existsSync(catalogueSidecarPath(source)) ? srcSha.then((sha) => readCatalogueFile(source, sha)) : Promise.resolve(null);
  old.catch(() => undefined);
  const neu = existsSync(catalogueSidecarPath(target)) ? targetSha().then((sha) => readCatalogueFile(target, sha)) : undefined;
  neu?.catch(() => undefined);

  const record = async (built: BuiltDelta): Promise<string[]> => {
    const warnings: string[] = [];
    const write = async (path: string, cat: Catalogue, sha: () => Promise<string>) => {
      try {
        await writeCatalogueFile(path, cat, await sha());
      } catch (err) {
        warnings.push(`cannot record the catalogue of ${path}: ${(err as Error).message}`);
      }
    };
    if (built.source === "images") await write(source, built.diff.oldCat, sourceSha);
    if (built.source !== "catalogues" && (built.newCatalogueStale || neu === undefined || (await neu) === null))
      await write(target, built.diff.newCat, targetSha);
    return warnings;
  };
  return { old, ...(neu ? { new: neu } : {}), record };
}
