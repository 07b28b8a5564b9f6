/**
 * The files trusted indexes list, checked on a mirror: each one and its `.asc` must answer a
 * HEAD (the client HEADs every URL before fetching it, and any status >= 400 fails the run:
 * client-protocol §2), with the Content-Length the index gives. With `deep`, each file is
 * also downloaded once, streamed through SHA-256 and the signature check together (never
 * held in memory), and its `.asc` judged by the client's rule (§4.3) with the keys that may
 * sign it (image-signing or the listing device's keyring).
 */
import { pipeline } from "node:stream/promises";
import { PassThrough } from "node:stream";
import { SignatureError } from "../errors.js";
import { HashingStream } from "../io/hashing.js";
import { verifyDetached } from "../pgp/verify.js";
import { armorDamage } from "./armor.js";
import { RemoteHttpError, type RemoteSource } from "./remote-http.js";
import { anyOf, type Trust } from "./signatures.js";

/** A file (host-absolute path) as the trusted indexes list it. */
export interface RemoteRef {
  entries: { index: string; checksum: string; size: number; signature: string }[];
  trusts: (Trust | null)[];
}

/** Where problems go: `file` is a host-absolute path of the mirror. */
export interface RemoteSink {
  error(file: string, message: string): void;
  blacklist: ReadonlySet<string>;
  signal?: AbortSignal;
}

export interface FilesChecked {
  files: number;
  bytes: number;
}

/** Signatures are a few hundred bytes; anything much larger is not one. */
export const MAX_SIGNATURE = 1 << 20;

const why = (err: unknown) => (err instanceof RemoteHttpError ? err.why : (err as Error).message);
const missing = (err: unknown) => err instanceof RemoteHttpError && (err.status === 404 || err.status === 410);

/** Runs `fn` over `items`, `limit` at a time (the client uses up to 4 connections). */
export async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function headFile(src: RemoteSource, sink: RemoteSink, path: string, listedBy: string): Promise<number | null | undefined> {
  try {
    return await src.head(path);
  } catch (err) {
    if (missing(err)) sink.error(path, `missing (${why(err)}): listed by ${listedBy}`);
    else sink.error(path, `cannot be fetched (${why(err)}): listed by ${listedBy}; devices stop there`);
    return undefined;
  }
}

/** Downloads `path` once: SHA-256, size and (when `trust` is known) the signature together. */
async function deepCheck(src: RemoteSource, sink: RemoteSink, path: string, ref: RemoteRef, trust: Trust | null): Promise<number | null> {
  const e0 = ref.entries[0];
  let armored: string | null = null;
  try {
    armored = (await src.get(e0.signature, MAX_SIGNATURE)).toString("utf8");
  } catch {
    // Already reported by the HEAD of the signature.
  }
  const damage = armored === null ? null : armorDamage(armored);
  if (damage) sink.error(e0.signature, `damaged signature of ${path}: ${damage}`);
  const hashing = new HashingStream();
  const tee = new PassThrough();
  let body;
  try {
    body = await src.stream(path);
  } catch (err) {
    sink.error(path, `cannot be fetched (${why(err)})`);
    return null;
  }
  const verifying =
    armored !== null && !damage && trust
      ? verifyDetached(tee, armored, trust.keys, { blacklist: trust.blacklist, what: path }).then(
          () => null,
          (err: unknown) => {
            tee.resume(); // a signature refused before reading: keep the download flowing
            return err instanceof Error ? err : new Error(String(err));
          },
        )
      : null;
  if (!verifying) tee.resume();
  try {
    await pipeline(body, hashing, tee);
  } catch (err) {
    sink.error(path, `download failed after ${hashing.bytes} bytes (${why(err)})`);
    tee.destroy();
    await verifying;
    return null;
  }
  const sigErr = await verifying;
  if (sigErr) {
    if (!(sigErr instanceof SignatureError)) throw sigErr;
    const reason = sigErr.message.replace(/^Bad signature on [^:]*: /, "").replace(/^Cannot verify [^:]*: /, "");
    if (reason === "the data does not match the signature")
      sink.error(path, `does not match its signature ${e0.signature}: the file changed after it was signed`);
    else sink.error(e0.signature, `is not a valid signature of ${path} by ${trust!.label}: ${reason}`);
  }
  for (const e of ref.entries) {
    if (hashing.sha256 !== e.checksum)
      sink.error(path, `sha256 ${hashing.sha256} differs from the checksum ${e.checksum} in ${e.index}: devices reject it (HASH ERROR)`);
  }
  return hashing.bytes;
}

/** Checks every listed file; `refs` keys are host-absolute paths. */
export async function checkRemoteFiles(
  src: RemoteSource,
  sink: RemoteSink,
  refs: Map<string, RemoteRef>,
  opts: { deep: boolean },
): Promise<FilesChecked> {
  const out: FilesChecked = { files: 0, bytes: 0 };
  const paths = [...refs.keys()].sort();
  await eachLimit(paths, opts.deep ? 2 : 4, async (path) => {
    sink.signal?.throwIfAborted();
    const ref = refs.get(path)!;
    const listedBy = [...new Set(ref.entries.map((e) => e.index))].join(", ");
    const size = await headFile(src, sink, path, listedBy);
    for (const sig of new Set(ref.entries.map((e) => e.signature))) {
      await src.head(sig).catch((err: unknown) => {
        const what = missing(err) ? `missing (${why(err)})` : `cannot be fetched (${why(err)})`;
        sink.error(sig, `${what}: the signature of ${path}, listed by ${listedBy}`);
      });
    }
    if (size === undefined) return;
    out.files++;
    let bytes = size;
    if (opts.deep) {
      const got = await deepCheck(src, sink, path, ref, anyOf(ref.trusts, sink.blacklist));
      if (got === null) return;
      if (size !== null && got !== size) sink.error(path, `sent ${got} bytes, its Content-Length said ${size}`);
      bytes = got;
    }
    if (bytes === null) {
      sink.error(path, "has no Content-Length on HEAD: its size cannot be checked without --deep");
      return;
    }
    out.bytes += bytes;
    for (const e of ref.entries) {
      if (bytes !== e.size) sink.error(path, `is ${bytes} bytes${opts.deep ? "" : " (Content-Length)"}, ${e.index} says ${e.size}`);
    }
  });
  return out;
}
