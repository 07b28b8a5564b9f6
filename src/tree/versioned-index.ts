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
 * An older copy stays for RETAIN_MS after a newer one replaced it: a device that fetched the
 * previous channels.json must still find the index it names.
 */
import { createHash } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
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
 * redirect's entry too: they name the directory they read, §2.2). Returns how many changed.
 * Entries on another host are left alone.
 */
export function pointEntriesAt(channels: ChannelsDoc, root: string, dir: string, url: string): number {
  let n = 0;
  for (const ch of Object.values(channels)) {
    for (const e of Object.values(ch.devices)) {
      if (!e.index.startsWith("/") || e.index.startsWith("//")) continue;
      if (deviceDirOf(root, e.index) !== dir || e.index === url) continue;
      e.index = url;
      n++;
    }
  }
  return n;
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
 * The index copies in `dir` that must stay although channels.json no longer names them: every
 * one replaced less than RETAIN_MS before `now` (its successor is younger than that). The
 * copy channels.json names is referenced anyway; the newest unnamed one (after a rename to
 * the conventional path) has no successor and goes.
 */
export async function retainedIndexCopies(dir: string, now = Date.now()): Promise<string[]> {
  const names = (await listIndexCopies(dir)).map((p) => p.slice(dir.length + 1));
  const copies = await Promise.all(
    names.map(async (n) => ({ path: join(dir, n), mtime: (await stat(join(dir, n)).catch(() => null))?.mtimeMs ?? 0 })),
  );
  copies.sort((a, b) => a.mtime - b.mtime);
  return copies.filter((c, i) => i < copies.length - 1 && copies[i + 1]!.mtime > now - RETAIN_MS).map((c) => c.path);
}
