/**
 * Signed documents on disk: read them, and replace them with a matching signature.
 *
 * Commit order (why it is this one). A device fetches `X` and then `X.asc` (HEAD both, then
 * GET both: client-protocol §3) and rejects a pair that does not match: for channels.json it
 * re-fetches the image-signing keyring and retries once, for an index.json the check fails
 * until the next one (client-protocol §3 step 4, §9). Two files cannot be swapped in one
 * atomic step, so the goal is the shortest possible window:
 *
 *  1. prepare: write the new document to a temporary sibling, fsync; sign those exact bytes
 *     into a second temporary sibling, fsync. Slow work (signing, all documents of a
 *     transaction, version tarballs) happens here, while readers still see the old pair.
 *     Any failure here discards the temporaries and leaves the tree untouched.
 *  2. install: rename the document over `X`, then immediately the signature over `X.asc`
 *     (rename() replaces atomically, so a reader never sees a missing or partial file). The
 *     mismatch window is the gap between two consecutive rename syscalls, microseconds
 *     (installPair: no await between them), instead of the
 *     reference's delete+rename+delete+rename with signing in between (§2.4). The document
 *     goes first because clients request the document before its signature: a mismatch
 *     then needs the document GET to land after the first rename and the signature GET
 *     before the second (both inside the gap), or the two GETs to straddle both renames.
 *     Signature-first would add every pair of GETs that merely straddles the first rename.
 *  3. fsync the directories, so the renames survive a crash.
 *
 * A transaction installs pool/version files first, then the content-named index copies
 * (signature first: a new name), then every index.json, then channels.json, so no committed
 * document ever names a file that is not there yet. The copies are what closes the window
 * for indexes (versioned-index.ts); channels.json keeps the two-rename window above.
 */
import { randomBytes } from "node:crypto";
import { renameSync } from "node:fs";
import { open, readFile, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import type { Signer } from "../pgp/signer.js";

/** A document and its signature, written to temporaries and waiting to be installed. */
export interface PreparedPair {
  final: string;
  tmp: string;
  sigTmp: string;
}

/** A hidden sibling of `path` that no other writer picks. */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.new-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Writes `data` to a new file and fsyncs it. */
export async function writeSynced(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const fh = await open(path, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Contents of a file, or null when it does not exist. */
export async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** Step 1: temporaries for `path` and `path.asc` (image-signing, §1.4). */
export async function prepareSigned(path: string, data: string | Uint8Array, signer: Signer): Promise<PreparedPair> {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const pair: PreparedPair = { final: path, tmp: tempSibling(path), sigTmp: tempSibling(`${path}.asc`) };
  try {
    await writeSynced(pair.tmp, bytes);
    const armored = await signer.signStream("image-signing", Readable.from([bytes]));
    await writeSynced(pair.sigTmp, armored);
  } catch (err) {
    await discardPair(pair);
    throw err;
  }
  return pair;
}

/**
 * Step 2: document, then signature, back to back. Synchronous on purpose: two awaited
 * rename()s go through the libuv thread pool with an event-loop turn between them, and
 * under load (load average 10+ on 2 cores) that gap grew to milliseconds: the torn-read
 * test saw 15 mismatched channels.json pairs of 8,523 (issue 14 item 7). Two renameSync()
 * calls are two consecutive syscalls, a few microseconds, and nothing else of this process
 * can run between them. The event loop is blocked only for those microseconds.
 */
export async function installPair(pair: PreparedPair): Promise<void> {
  renameSync(pair.tmp, pair.final);
  renameSync(pair.sigTmp, `${pair.final}.asc`);
}

export async function discardPair(pair: PreparedPair): Promise<void> {
  await unlink(pair.tmp).catch(() => {});
  await unlink(pair.sigTmp).catch(() => {});
}

/** Step 3: make renames in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r").catch(() => null);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    /* some filesystems refuse fsync on directories; the rename itself is still atomic */
  } finally {
    await fh.close();
  }
}

/** Writes a signed document in one go (prepare + install + fsync): sidecars and the like. */
export async function writeSignedFile(path: string, data: string | Uint8Array, signer: Signer): Promise<void> {
  const pair = await prepareSigned(path, data, signer);
  await installPair(pair);
  await fsyncDir(dirname(path));
}
