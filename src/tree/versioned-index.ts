/**
 * Content-named index copies: why a device never gets a torn index pair (issue 9, SECURITY.md
 * "How a change reaches devices").
 *
 * A device fetches `<index>` and `<index>.asc` as two requests, in parallel and in either order
 * (client-protocol §2, §3 step 7). If both files are replaced in place, a commit between the
 * two requests hands it a document and a signature from different commits, and the check
 * fails. One file with two signatures cannot bridge that: python-gnupg runs `gpg --batch`,
 * which stops at the first BAD signature packet, so only the document whose signature comes
 * first would verify (measured with gpg 2.2.40).
 *
 * So, like TUF's consistent snapshots: every index a commit writes also goes to an immutable
 * file named by its content, `<device dir>/index-<first 16 hex of sha256>.json` (+ `.asc`), and
 * channels.json's `index` names that file (the client follows whatever path channels.json gives,
 * §3 step 7; ubuntu-device-flash and phablet-flash too, §10). A name is written once, signature
 * first, and never changes, so any pair of requests for it matches. The conventional
 * `<device dir>/index.json` is still written (the UBports installer hard-codes that path and
 * checks no signature, §10.1). channels.json itself has a fixed name; the client re-fetches
 * the image-signing keyring and retries it once on a bad signature (§3 step 4).
 *
 * An older copy stays for RETAIN_MS after channels.json stopped naming it: a device that
 * fetched the previous channels.json must still find the index it names.
 */
import { createHash } from "node:crypto";
import { readdir, stat, utimes } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { ChannelsDoc } from "../model/channels.js";
import { deviceDirOf } from "./paths.js";

/** How long a superseded index copy is kept for devices holding an older channels.json. */
export const RETAIN_MS = 10 * 60 * 1000;

const NAME = /^index-[0-9a-f]{16}\.json$/;

/** `index-<sha256/16>.json` for these exact bytes. */
export function versionedIndexName(bytes: Uint8Array): string {
  return `index-${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}.json`;
}

export function isVersionedIndexName(name: string): boolean {
  return NAME.test(name);
}

/** The URL path channels.json uses for a file of the tree. */
export function treeUrl(root: string, file: string): string {
  return `/${relative(root, file).split(sep).join("/")}`;
}

/**
 * Points every channels.json entry whose index lives in `dir` at `url` (an alias's or a
 * redirect's entry too: they name the directory they read, §2.2). Returns the index URLs it
 * replaced. Entries on another host are left alone.
 */
export function pointEntriesAt(channels: ChannelsDoc, root: string, dir: string, url: string): string[] {
  const replaced: string[] = [];
  for (const ch of Object.values(channels)) {
    for (const e of Object.values(ch.devices)) {
      if (!e.index.startsWith("/") || e.index.startsWith("//")) continue;
      if (deviceDirOf(root, e.index) !== dir || e.index === url) continue;
      replaced.push(e.index);
      e.index = url;
    }
  }
  return replaced;
}

/**
 * Marks copies as superseded now: their mtime is when they were last named, so the
 * RETAIN_MS countdown starts when a device can last have read a channels.json naming them.
 */
export async function markSuperseded(root: string, urls: Iterable<string>, now = new Date()): Promise<void> {
  for (const url of urls) {
    if (!isVersionedIndexName(url.slice(url.lastIndexOf("/") + 1))) continue;
    await utimes(join(root, url), now, now).catch(() => {});
    // Then its signature: a signature changed before its document (ctime) tells `si serve`
    // the pair is settled (src/server/pair-settle.ts).
    await utimes(join(root, `${url}.asc`), now, now).catch(() => {});
  }
}

/** Every index copy in `dir` (absolute paths). */
export async function listIndexCopies(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter(isVersionedIndexName).map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/**
 * The index copies in `dir` that must stay although channels.json no longer names them: those
 * named until less than RETAIN_MS before `now` (markSuperseded sets their mtime; a copy that
 * was never named, left by a killed commit, has its creation time). The copy channels.json
 * names is referenced anyway.
 */
export async function retainedIndexCopies(dir: string, now = Date.now()): Promise<string[]> {
  const copies = await listIndexCopies(dir);
  const mtimes = await Promise.all(copies.map(async (p) => (await stat(p).catch(() => null))?.mtimeMs ?? 0));
  return copies.filter((_, i) => mtimes[i] > now - RETAIN_MS);
}
