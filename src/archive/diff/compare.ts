/**
 * Change classification between two catalogues. Pure.
 *
 * Deliberately NOT the reference's rule (server-reference §6.2/§6.3, §13 #2), which only looks
 * at content after a metadata difference and so misses same-size same-mtime edits and
 * retargeted symlinks. Here an entry is changed when anything the recovery's
 * `tar --numeric-owner -x` would reproduce differs (client-protocol §8.3):
 *   - the type (file, hard link, symlink, directory, device, fifo);
 *   - regular files: SHA-256 of the content, size, mode, uid, gid, mtime;
 *   - symlinks and hard links: link target, mode, uid, gid, mtime;
 *   - devices: major/minor, mode, uid, gid, mtime; fifos: mode, uid, gid, mtime;
 *   - directories: mode, uid, gid. Directory mtimes are ignored: removing and extracting
 *     children rewrites them on the device anyway, so shipping them could not make them exact.
 * Ignored: uname/gname (the recovery extracts with --numeric-owner) and the "0" vs "\0" type
 * character of regular files (same file on disk).
 * A hard link is also changed when the path it links to is rewritten: re-extracting the target
 * makes a new inode and the old link would keep the old content (LP #1444347).
 *
 * mtime policy (issue 19, `delta_mtime`): with "content" (the default) an entry whose only
 * change is its mtime is NOT changed: left out of the delta and of `removed`, the device
 * keeps the old mtime, as with the reference (§6.3 "same content, only mtime differs").
 * Everything else above still counts. "exact" also counts mtimes (the list above as is).
 */
import type { DeltaMtimePolicy } from "../../config/types.js";
import { compareCodePoints } from "../../format/pyjson.js";
import type { Catalogue, CatalogueEntry } from "./catalogue.js";

export interface ChangeSet {
  /** Paths only in the new image (real members), code-point order. */
  added: string[];
  /** Paths in both whose entry must be rewritten, code-point order. */
  changed: string[];
  /** Paths only in the old image, code-point order. */
  deleted: string[];
  /** Lines of the delta's `removed` member: deleted + changed except metadata-only directory changes. */
  removed: string[];
  /** Every path the delta must carry (added + changed, real members of the new image). */
  write: Set<string>;
  /** Things the operator should know (unsafe removal lines, dangling hard links). */
  warnings: string[];
}

function sameNumbers(a: CatalogueEntry, b: CatalogueEntry): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
}

/** Whether extracting `b` over `a` changes anything the policy counts (hard-link propagation aside). */
export function entryChanged(a: CatalogueEntry, b: CatalogueEntry, policy: DeltaMtimePolicy = "content"): boolean {
  if (a.type !== b.type) return true;
  if (a.implicit || b.implicit) {
    // A real directory that becomes implicit stays as it is on disk; an implicit one that
    // gets a member of its own is rewritten, since its old mode and owner are unknown.
    return !!a.implicit && !b.implicit;
  }
  if (!sameNumbers(a, b)) return true;
  if (policy === "exact" && a.type !== "directory" && a.mtime !== b.mtime) return true;
  switch (a.type) {
    case "directory":
      return false;
    case "file":
      return a.sha256 !== b.sha256 || a.size !== b.size;
    case "link":
    case "symlink":
      return a.linkname !== b.linkname;
    case "character-device":
    case "block-device":
      return a.devmajor !== b.devmajor || a.devminor !== b.devminor;
    case "fifo":
      return false;
  }
}

/**
 * Lines that would be dangerous or meaningless in the recovery's `rm -Rf $file` loop:
 * absolute paths and ".." escape the update root, "." is the root itself, a newline splits
 * the line. Returns the reason, or undefined when the line is safe.
 */
export function unsafeRemoval(path: string): string | undefined {
  if (path === "" || path === ".") return "it names the update root";
  if (path.startsWith("/")) return "it is absolute";
  if (path.split("/").includes("..")) return "it contains '..'";
  if (/[\n\r]/.test(path)) return "it contains a line break";
  return undefined;
}

/** Compares two catalogues (both with implicit parents added) under an mtime policy. */
export function compareCatalogues(oldCat: Catalogue, newCat: Catalogue, policy: DeltaMtimePolicy = "content"): ChangeSet {
  const added: string[] = [];
  const changed = new Set<string>();
  const deleted: string[] = [];
  const removed: string[] = [];
  const warnings: string[] = [];

  for (const [path, b] of newCat.all()) {
    const a = oldCat.get(path);
    if (!a) {
      if (!b.implicit) added.push(path);
    } else if (entryChanged(a, b, policy)) changed.add(path);
  }
  for (const path of oldCat.entries.keys()) {
    if (!newCat.get(path)) deleted.push(path);
  }

  // LP #1444347: links to rewritten paths are rewritten too, transitively (links to links).
  const linksTo = new Map<string, string[]>();
  for (const [path, b] of newCat.all()) {
    if (b.type !== "link" || b.linkname === undefined) continue;
    const list = linksTo.get(b.linkname);
    if (list) list.push(path);
    else linksTo.set(b.linkname, [path]);
    const target = newCat.get(b.linkname);
    if (!target || target.implicit) {
      warnings.push(`hard link '${path}' points to '${b.linkname}', which is not a member of the new image`);
    } else if (target.type === "directory") {
      warnings.push(`hard link '${path}' points to '${b.linkname}', which is a directory`);
    }
  }
  const rewritten = [...added, ...changed];
  const addedSet = new Set(added);
  while (rewritten.length > 0) {
    const target = rewritten.pop()!;
    for (const link of linksTo.get(target) ?? []) {
      if (addedSet.has(link) || changed.has(link)) continue;
      changed.add(link);
      rewritten.push(link);
    }
  }

  const write = new Set<string>(added);
  for (const path of changed) {
    const a = oldCat.get(path)!;
    const b = newCat.get(path)!;
    if (!b.implicit) write.add(path);
    // A directory whose only change is metadata must not be listed: `rm -Rf` would delete
    // its whole content. Type changes are listed so the old entry makes way (§6.4).
    if (a.type === "directory" && b.type === "directory") continue;
    removed.push(path);
  }
  removed.push(...deleted);

  const safe = removed.sort(compareCodePoints).filter((p) => {
    const why = unsafeRemoval(p);
    if (why) warnings.push(`not listing '${p}' in removed: ${why}`);
    else if (/[\s*?[\\]/.test(p)) {
      warnings.push(
        `removed line '${p}' has whitespace, a glob or a backslash: the recovery's unquoted rm -Rf $file mangles it (client-protocol §8.3)`,
      );
    }
    return !why;
  });

  return {
    added: added.sort(compareCodePoints),
    changed: [...changed].sort(compareCodePoints),
    deleted: deleted.sort(compareCodePoints),
    removed: safe,
    write,
    warnings,
  };
}

/** Two images compared, and the order their delta writes the changed members in. */
export interface ImageDiff {
  oldCat: Catalogue;
  newCat: Catalogue;
  changes: ChangeSet;
  /** Members after `removed`, in delta order. */
  order: string[];
}
