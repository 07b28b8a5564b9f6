/**
 * Files on disk versus files the documents name (server-reference §7.4): the walk (os.walk
 * without following symlinked directories, files directly in gpg/ not counted), the
 * referenced set, and cleanup.
 */
import { readdir, rmdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { ChannelsDoc } from "../model/channels.js";
import { cleanupPhased, emptyIndex, parseIndex, type IndexDoc } from "../model/index-doc.js";
import { missingFiles, orphanedFiles, referencedFiles } from "../model/orphans.js";
import { readTextOrNull } from "./commit.js";
import { deviceDirOf, isDir } from "./paths.js";
import { retainedIndexCopies } from "./versioned-index.js";

export interface Existing {
  /** Files outside gpg/ (candidates for orphans). */
  files: Set<string>;
  /** Files directly in gpg/: never orphans, but they do exist (a device keyring may live there). */
  gpgFiles: Set<string>;
  emptyDirs: Set<string>;
}

/** Every file under `root` (symlinks to files included) and every empty directory. */
export async function listExisting(root: string): Promise<Existing> {
  const out: Existing = { files: new Set(), gpgFiles: new Set(), emptyDirs: new Set() };
  const gpg = join(root, "gpg");
  const walk = async (dir: string): Promise<void> => {
    const files: string[] = [];
    const walkInto: string[] = [];
    let dirCount = 0;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        dirCount++;
        walkInto.push(p);
      } else if (e.isSymbolicLink() && isDir(p))
        dirCount++; // listed, never followed
      else files.push(p);
    }
    // The published keyrings in gpg/ are not named by any document (§7.4).
    if (dir === gpg) for (const f of files) out.gpgFiles.add(f);
    else {
      for (const f of files) out.files.add(f);
      // The root itself is never "empty": removing it would remove publish_path.
      if (dir !== root && files.length === 0 && dirCount === 0) out.emptyDirs.add(dir);
    }
    for (const d of walkInto) await walk(d);
  };
  await walk(root);
  return out;
}

/** Every file the documents name, reading each device index once. */
export async function listReferenced(root: string, channels: ChannelsDoc): Promise<Set<string>> {
  const indexes = new Map<string, IndexDoc>();
  for (const c of Object.values(channels)) {
    for (const e of Object.values(c.devices)) {
      const dir = deviceDirOf(root, e.index);
      if (indexes.has(dir)) continue;
      const file = join(dir, "index.json");
      const text = await readTextOrNull(file);
      const doc = text === null ? emptyIndex() : parseIndex(text, file);
      cleanupPhased(doc);
      indexes.set(dir, doc);
    }
  }
  const out = referencedFiles(
    root,
    channels,
    (c, d) => deviceDirOf(root, channels[c].devices[d].index),
    (dir) => indexes.get(dir)!,
  );
  // Superseded index copies stay a while for devices holding an older channels.json.
  for (const dir of indexes.keys()) {
    for (const copy of await retainedIndexCopies(dir)) {
      out.add(copy);
      out.add(`${copy}.asc`);
    }
  }
  return out;
}

export async function listMissing(root: string, channels: ChannelsDoc): Promise<string[]> {
  const ex = await listExisting(root);
  // The reference reported a device keyring kept in gpg/ as missing: it does exist.
  return missingFiles(new Set([...ex.files, ...ex.gpgFiles]), await listReferenced(root, channels));
}

export async function listOrphaned(root: string, channels: ChannelsDoc): Promise<string[]> {
  const ex = await listExisting(root);
  return orphanedFiles(ex.files, ex.emptyDirs, await listReferenced(root, channels));
}

/** Deletes the orphans; directories emptied by this run go on the next one (§7.4). */
export async function removeOrphans(orphans: string[]): Promise<void> {
  for (const p of orphans) {
    const st = await stat(p).catch(() => null);
    if (st?.isDirectory()) await rmdir(p);
    else await unlink(p);
  }
}
