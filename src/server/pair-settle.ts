/**
 * A signed document caught between its two renames (src/tree/commit.ts installPair): the
 * new document is in place, its new signature not yet. The gap is two consecutive rename
 * syscalls, microseconds, but the second rename waits for the file system's journal, and on
 * a busy disk (another process fsyncing gigabytes) it took 61 ms here. A device that GETs
 * channels.json inside that gap, then its .asc, gets a pair from two commits; its one retry
 * (client-protocol §3 step 4: re-fetch the image-signing keyring, then both files again) is
 * quick enough to land in the same gap and fail again, and then the device gives up until
 * the next poll. So `si serve` holds a request for a document whose signature is older
 * than it until the signature follows (or SETTLE_MAX_MS passed: a writer killed between the
 * two renames must not stall every request for ever).
 *
 * Only documents rewritten in place by every commit (channels.json, index.json: CACHE_MUTABLE
 * in content-rules.ts) are held. New names (index copies, pool files) install their signature
 * first, so theirs is always the older one, and waiting for it would only delay them.
 *
 * "Older" is ctime: rename() sets the ctime of the inode it moves, the document is renamed
 * first, so after a commit the signature's ctime is at least the document's, and during the
 * gap it is the previous commit's, seconds or days earlier.
 */
import { statSync, type Stats } from "node:fs";
import { CACHE_MUTABLE, cacheControlOf } from "./content-rules.js";

/** Longest a request waits for a document's signature to follow it. */
export const SETTLE_MAX_MS = 1000;
/** How often a held request looks again. */
export const SETTLE_POLL_MS = 2;

/** A document or its signature, with the state of the other half of the pair. */
export interface PairState {
  /** The other file of the pair. */
  partner: string;
  /** The document was renamed in after its signature last was: the commit is between its renames. */
  lags: boolean;
  /** This state of the pair (both identities): a wait given up on is not made again. */
  key: string;
}

/**
 * The pair `file` (as `st` describes it) belongs to, when requests for it may be held: a
 * document rewritten in place by every commit, or its `.asc`. Both halves are held while the
 * document is newer: a signature answered inside the gap would be the old one, and a client
 * asking for it first (or for both at once) would pair it with the new document.
 */
export function pairState(file: string, urlPath: string, st: Stats): PairState | undefined {
  const isSig = urlPath.endsWith(".asc");
  const docPath = isSig ? urlPath.slice(0, -4) : urlPath;
  if (cacheControlOf(docPath) !== CACHE_MUTABLE || docPath.endsWith(".asc")) return undefined;
  const partner = isSig ? file.slice(0, -4) : `${file}.asc`;
  const other = statSync(partner, { throwIfNoEntry: false });
  if (!other) return undefined;
  const [doc, sig] = isSig ? [other, st] : [st, other];
  return { partner, lags: sig.ctimeMs < doc.ctimeMs, key: `${file}\0${st.ino}:${st.ctimeMs}\0${other.ino}:${other.ctimeMs}` };
}
