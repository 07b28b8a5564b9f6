/**
 * An image as the diff sees it: per path, the metadata of its last occurrence plus the
 * SHA-256 of its content — never the content (memory stays proportional to the number of
 * entries, not to the archive size). Pure: the IO that fills it is in scan.ts.
 */
import type { TarEntryType, TarHeader } from "../tar/types.js";

export interface CatalogueEntry {
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** SHA-256 hex of a regular file's content. */
  sha256?: string;
  /** Position of the (last) occurrence in the archive, 0-based; -1 for implicit directories. */
  ordinal: number;
  /**
   * A parent directory with no member of its own: tar creates it while extracting its
   * children, so it exists on disk even though the archive never names it.
   */
  implicit?: boolean;
}

export class Catalogue {
  readonly entries = new Map<string, CatalogueEntry>();
  /** Members read, duplicates included. */
  members = 0;
  /** Regular-file content bytes read. */
  contentBytes = 0;

  /** Records a member; a later occurrence of a path replaces the earlier one (§6.1). */
  add(header: TarHeader, sha256?: string): void {
    const e: CatalogueEntry = {
      type: header.type,
      mode: header.mode,
      uid: header.uid,
      gid: header.gid,
      mtime: header.mtime,
      size: header.size,
      ordinal: this.members++,
    };
    if (header.linkname !== undefined) e.linkname = header.linkname;
    if (header.devmajor !== undefined) e.devmajor = header.devmajor;
    if (header.devminor !== undefined) e.devminor = header.devminor;
    if (sha256 !== undefined) e.sha256 = sha256;
    this.contentBytes += header.size;
    // Delete first so iteration order follows the last occurrence.
    this.entries.delete(header.name);
    this.entries.set(header.name, e);
  }

  /** Adds an implicit directory for every parent path no member names. Call once, at the end. */
  addImplicitParents(): void {
    const implicit: string[] = [];
    for (const name of this.entries.keys()) {
      for (let i = name.lastIndexOf("/"); i > 0; i = name.lastIndexOf("/", i - 1)) {
        const parent = name.slice(0, i);
        if (parent === "." || this.entries.has(parent)) break;
        implicit.push(parent);
      }
    }
    for (const parent of implicit) {
      if (!this.entries.has(parent)) {
        this.entries.set(parent, { type: "directory", mode: 0, uid: 0, gid: 0, mtime: 0, size: 0, ordinal: -1, implicit: true });
      }
    }
  }

  get(name: string): CatalogueEntry | undefined {
    return this.entries.get(name);
  }
}
