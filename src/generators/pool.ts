/**
 * Shared by the generators: pool paths, "reuse if it exists" (server-reference §5.1 step 2,
 * §2.6), temporary directories inside the pool, and publishing a file.
 *
 * Publishing (§5.1 step 3, §1.4) is one pass over the bytes: they stream through SHA-256 and
 * the image-signing signature into a temporary sibling of the destination, which is fsynced;
 * then the sidecar (`.json` + `.json.asc`), then the `.asc`, and only then the rename that
 * makes the file visible under its final name. The existence of `X.tar.xz` (the reference's
 * cache test) therefore implies that its signature and sidecar are complete, and a crash at
 * any point leaves at most hidden temporaries behind (cleanup removes them as orphans).
 *
 * Images (issue 13): a pool `*.tar.xz` that is not a delta is also streamed, in the same
 * pass, through an xz decompressor into the image inspector (src/archive/inspect); nothing
 * is signed or renamed unless it passes. Its catalogue (issue 19) is written as
 * `X.catalogue.gz` before the `.asc` and the rename, so a pool file never exists without its
 * catalogue; a crash in between leaves a catalogue whose pool file does not exist, which the
 * orphan cleanup removes (src/model/orphans.ts keeps it only beside a referenced pool file).
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdir, mkdtemp, open, readFile, readdir, rename, rm, unlink } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { Transform, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Catalogue } from "../archive/diff/catalogue.js";
import { catalogueSidecarPath, writeCatalogueFile } from "../archive/diff/catalogue-file.js";
import { ImageInspection } from "../archive/inspect/index.js";
import { imageLimits } from "../config/types.js";
import { dumpPyJson, type JsonValue } from "../format/pyjson.js";
import { sidecarPath } from "../model/naming.js";
import { writeFileAtomic } from "../pgp/local-signer.js";
import { exists, pyRealpath } from "../tree/paths.js";
import type { Environment, FileDigest, GeneratorContext } from "./types.js";

export const poolDir = (ctx: GeneratorContext) => join(ctx.config.publish_path, "pool");

/** realpath(`<publish>/pool/<name>`): generators return real paths (§5.1). */
export const poolPath = (ctx: GeneratorContext, name: string) => pyRealpath(join(poolDir(ctx), name));

export { exists };

/** The sidecar object of `tarPath` (`X.tar.xz` → `X.json`), or null if absent or not a JSON object. */
export async function readSidecar(tarPath: string): Promise<Record<string, JsonValue> | null> {
  let text: string;
  try {
    text = await readFile(sidecarPath(tarPath), "utf8");
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, JsonValue>) : null;
  } catch {
    return null;
  }
}

/** The sidecar's `version_detail`, when it has a string one. */
export async function sidecarVersionDetail(tarPath: string): Promise<string | null> {
  const v = (await readSidecar(tarPath))?.version_detail;
  return typeof v === "string" ? v : null;
}

/**
 * §5.1 step 2: when `path` exists, append the version_detail of its sidecar (or `computed`
 * when the sidecar has none) and report true; the caller returns `path` without regenerating.
 */
export async function reuseExisting(ctx: GeneratorContext, env: Environment, path: string, computed: string): Promise<boolean> {
  if (!exists(path)) return false;
  env.version_detail.push((await sidecarVersionDetail(path)) ?? computed);
  ctx.log(`I: reusing ${path}`);
  return true;
}

/**
 * Removes the `pool/.tmp-*` directories of runs that were killed (SIGKILL, power loss). Only
 * under the global lock: then no other writer owns one. Without this, the cleanup's
 * "directories emptied by this run go on the next one" rule (§7.4) would leave each for two
 * more imports (bench/crash.ts found them).
 */
export async function removeStalePoolTemps(publishPath: string): Promise<string[]> {
  const pool = join(publishPath, "pool");
  const names = await readdir(pool).catch(() => [] as string[]);
  const stale = names.filter((n) => n.startsWith(".tmp-")).map((n) => join(pool, n));
  for (const d of stale) await rm(d, { recursive: true, force: true });
  return stale;
}

/** Runs `fn` with a fresh `<publish>/pool/.tmp-*` directory (same filesystem), removed afterwards. */
export async function withPoolTemp<T>(ctx: GeneratorContext, fn: (dir: string) => Promise<T>): Promise<T> {
  await mkdir(poolDir(ctx), { recursive: true });
  const dir = await mkdtemp(join(poolDir(ctx), ".tmp-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

async function fsyncPath(path: string, dir = false): Promise<void> {
  const fh = await open(path, "r").catch(() => null);
  if (!fh) return;
  try {
    await fh.sync();
  } catch (err) {
    if (!dir) throw err; // some filesystems refuse fsync on directories
  } finally {
    await fh.close();
  }
}

/** Writes `text` to `path` and its image-signing signature to `path.asc`, each atomically. */
export async function writeSignedText(ctx: GeneratorContext, path: string, text: string): Promise<void> {
  const bytes = Buffer.from(text, "utf8");
  const sig = await ctx.signer.begin("image-signing");
  sig.update(bytes);
  const armored = await sig.finish();
  await writeFileAtomic(path, bytes);
  await writeFileAtomic(`${path}.asc`, armored);
}

/**
 * Where the bytes come from: a file already on the same filesystem (renamed into place, not
 * copied), a stream, or a producer that writes to the given stream and ends it.
 */
export type PoolSource = string | Readable | ((out: Writable) => Promise<unknown>);

export interface PublishOptions {
  /** The sidecar: a JSON value (written with dumpPyJson) or text written as is. */
  sidecar?: JsonValue | string;
  /** Inspect the bytes as an image tarball; default: isImageTarball(dest). */
  inspect?: boolean;
}

export interface PublishedFile extends FileDigest {
  path: string;
  /** An inspected image's catalogue (also written as its `.catalogue.gz` sidecar). */
  catalogue?: Catalogue;
}

/**
 * Whether `dest` is an image every device may install: a `.tar.xz` in the pool that is not
 * a delta (deltas are made from images inspected when they were published).
 */
export function isImageTarball(dest: string, ctx: GeneratorContext): boolean {
  const name = basename(dest);
  if (!name.endsWith(".tar.xz") || name.includes(".delta-")) return false;
  return dirname(dest) === dirname(poolPath(ctx, name)) || basename(dirname(dest)) === "pool";
}

/** Publishes `dest` (+ `.asc`, + sidecar) from `source`; see the module comment for the order. */
export async function publishPoolFile(
  source: PoolSource,
  dest: string,
  ctx: GeneratorContext,
  opts: PublishOptions = {},
): Promise<PublishedFile> {
  await mkdir(dirname(dest), { recursive: true });
  const sig = await ctx.signer.begin("image-signing");
  const hash = createHash("sha256");
  let size = 0;
  const inspection =
    (opts.inspect ?? isImageTarball(dest, ctx))
      ? new ImageInspection({ file: relative(ctx.config.publish_path, dest) || dest, limits: imageLimits(ctx.config), codec: ctx.codec })
      : undefined;
  // Hash, sign, and (images) inspect each chunk; resolves when the inspector takes more.
  const take = (chunk: Buffer): Promise<void> | undefined => {
    hash.update(chunk);
    sig.update(chunk);
    size += chunk.length;
    return inspection?.write(chunk);
  };
  let tmp: string | undefined; // ours to delete on failure
  let catalogueWritten = false;
  let catalogue: Catalogue | undefined;
  try {
    let ready: string;
    if (typeof source === "string") {
      for await (const chunk of createReadStream(source)) await take(chunk as Buffer);
      ready = source;
    } else {
      tmp = tempSibling(dest);
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          const waiting = take(chunk);
          if (waiting === undefined) cb(null, chunk);
          else waiting.then(() => cb(null, chunk), cb);
        },
      });
      const file = createWriteStream(tmp, { flags: "wx", mode: 0o644 });
      if (typeof source === "function") {
        const writing = pipeline(tap, file);
        try {
          await Promise.all([source(tap), writing]);
        } catch (err) {
          tap.destroy();
          await writing.catch(() => {});
          throw err;
        }
      } else {
        await pipeline(source, tap, file);
      }
      ready = tmp;
    }
    // Nothing is signed or renamed before the inspector has read the image to its end.
    catalogue = await inspection?.end();
    const sha256 = hash.digest("hex");
    await fsyncPath(ready);
    if (opts.sidecar !== undefined) {
      const text = typeof opts.sidecar === "string" ? opts.sidecar : dumpPyJson(opts.sidecar);
      await writeSignedText(ctx, sidecarPath(dest), text);
    }
    if (catalogue) {
      await writeCatalogueFile(dest, catalogue, sha256);
      catalogueWritten = true;
    }
    await writeFileAtomic(`${dest}.asc`, await sig.finish());
    await renameInto(ready, dest);
    tmp = undefined;
    await fsyncPath(dirname(dest), true);
    const digest = { sha256, size };
    ctx.checksums.set(dest, digest);
    return catalogue ? { path: dest, ...digest, catalogue } : { path: dest, ...digest };
  } catch (err) {
    // A refused image also breaks the pipeline feeding it: report the refusal, not the break.
    const refusal = inspection?.refusal;
    inspection?.abort();
    if (tmp) await unlink(tmp).catch(() => {});
    if (catalogueWritten && !exists(dest)) await unlink(catalogueSidecarPath(dest)).catch(() => {});
    throw refusal ?? err;
  }
}

/**
 * A producer for publishPoolFile: `fill` writes uncompressed bytes to an xz compressor (and
 * ends it); the compressed stream goes to the pool file. `sizeHint`: the uncompressed size
 * when known in advance (xz.ts picks block and dictionary sizes from it).
 */
export function xzProducer(
  ctx: GeneratorContext,
  fill: (xz: Writable) => Promise<unknown>,
  opts: { sizeHint?: number } = {},
): (out: Writable) => Promise<void> {
  return async (out) => {
    const xz = ctx.codec.compress({ level: ctx.config.xz_level, ...opts });
    const piping = pipeline(xz, out);
    try {
      await fill(xz);
    } catch (err) {
      xz.destroy(err as Error);
      await piping.catch(() => {});
      throw err;
    }
    await piping;
  };
}

/** rename(), or copy to a hidden sibling and rename when `from` is on another filesystem. */
async function renameInto(from: string, dest: string): Promise<void> {
  try {
    await rename(from, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    const tmp = tempSibling(dest);
    try {
      await copyFile(from, tmp);
      await fsyncPath(tmp);
      await rename(tmp, dest);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    await unlink(from).catch(() => {});
  }
}
