/**
 * Reading image tarballs for the diff: open with streaming decompression (xz or gzip sniffed
 * by magic, server-reference §8.3; anything else is read as a plain tar) and build a
 * catalogue, hashing each file's content as it streams past (pass 1).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { Transform, type Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { ArchiveError, errorMessage } from "../../errors.js";
import { defaultCodec } from "../../io/xz.js";
import { trackFileRead } from "../../io/progress.js";
import { guessCompression } from "../compression.js";
import { readTar } from "../tar/read.js";
import { Catalogue } from "./catalogue.js";

/**
 * Cap on an image's decompressed size: real rootfs images expand to a few GB; a
 * decompression bomb (xz packs ~7000:1) would otherwise keep an import busy for days.
 */
export const MAX_IMAGE_EXPANDED = 64 * 1024 ** 3;

/** The uncompressed tar stream of an image file (`.tar.xz`, `.tar.gz` or `.tar`). */
export async function openImageTar(path: string, opts: { maxExpanded?: number } = {}): Promise<Readable> {
  const head = Buffer.alloc(6);
  let fh;
  try {
    fh = await open(path, "r");
    await fh.read(head, 0, 6, 0);
  } catch (err) {
    throw new ArchiveError(`Cannot read image '${path}': ${errorMessage(err)}`, "Exception", { cause: err });
  } finally {
    await fh?.close();
  }
  const file = createReadStream(path, { highWaterMark: 1 << 16 });
  trackFileRead(path, file); // progress on a terminal (io/progress.ts)
  const kind = guessCompression(head);
  if (kind === null) return file;
  // One thread: the diff runs two decoders at once (pass 1) or one beside a two-thread
  // compressor (pass 2), so both cores are busy anyway, and a threaded xz decoder holds
  // ~140 MB of block buffers for a 24 MiB-block input where a single thread needs ~10 MB.
  const decoder = kind === "xz" ? defaultCodec().decompress({ threads: 1 }) : createGunzip();
  file.on("error", (err) => decoder.destroy(err));
  decoder.on("close", () => file.destroy());
  const max = opts.maxExpanded ?? MAX_IMAGE_EXPANDED;
  let total = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > max)
        return cb(new ArchiveError(`Cannot read image '${path}': it expands to more than ${max} bytes (decompression bomb?)`));
      cb(null, chunk);
    },
  });
  decoder.on("error", (err) => cap.destroy(err));
  cap.on("close", () => decoder.destroy());
  return file.pipe(decoder).pipe(cap);
}

/** Pass 1: one catalogue entry per path (last occurrence wins) with each file's SHA-256. */
export async function scanImage(path: string): Promise<Catalogue> {
  const cat = new Catalogue();
  try {
    for await (const { header, body } of readTar(await openImageTar(path))) {
      if (header.type === "file") {
        const hash = createHash("sha256");
        for await (const chunk of body) hash.update(chunk as Buffer);
        cat.add(header, hash.digest("hex"));
      } else cat.add(header);
    }
  } catch (err) {
    if (err instanceof ArchiveError && err.message.includes(path)) throw err;
    throw new ArchiveError(`Cannot read image '${path}': ${errorMessage(err).replace(/^Cannot read tar archive: /, "")}`, "Exception", {
      cause: err,
    });
  }
  cat.addImplicitParents();
  return cat;
}
