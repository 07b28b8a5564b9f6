/**
 * An image as the diff sees it: per path, the metadata of its last occurrence plus the
 * SHA-256 of its content — never the content. Pure: the IO that fills it is in scan.ts and
 * one-pass.ts.
 *
 * Stored in columns (typed arrays, the digest as 32 raw bytes) rather than one object per
 * path: a rootfs has tens of thousands of members per image, and per-entry objects with a
 * 64-character hex string made the diff's heap grow by ~200 bytes a member (issue 8:
 * "no more than 10 % more memory at twice the input"). `get()` builds an entry on demand.
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

const TYPES: TarEntryType[] = ["file", "link", "symlink", "directory", "character-device", "block-device", "fifo"];
const TYPE_CODE = new Map(TYPES.map((t, i) => [t, i]));
const IMPLICIT = 0x80;
const HAS_SHA = 0x40;

/** Rows per page: columns grow a page at a time (no doubling, no copy of what exists). */
const PAGE = 4096;

/** Fixed-size pages of one row each per column. */
interface Page {
  flags: Uint8Array;
  mode: Uint32Array;
  ordinal: Int32Array;
  /** uid, gid, mtime, size: doubles (base-256 tar numbers exceed 32 bits). */
  nums: Float64Array;
  sha: Uint8Array;
}

export class Catalogue {
  /** Path -> row, in order of last occurrence (iteration order of the archive). */
  readonly entries = new Map<string, number>();
  /** Members read, duplicates included. */
  members = 0;
  /** Regular-file content bytes read. */
  contentBytes = 0;

  private rows = 0;
  private readonly pages: Page[] = [];
  /** Link targets and device numbers are rare: kept by row. */
  private readonly linknames = new Map<number, string>();
  private readonly devices = new Map<number, [number, number]>();

  private newRow(): number {
    if (this.rows === this.pages.length * PAGE) {
      this.pages.push({
        flags: new Uint8Array(PAGE),
        mode: new Uint32Array(PAGE),
        ordinal: new Int32Array(PAGE),
        nums: new Float64Array(4 * PAGE),
        sha: new Uint8Array(32 * PAGE),
      });
    }
    return this.rows++;
  }

  private page(r: number): [Page, number] {
    return [this.pages[Math.floor(r / PAGE)], r % PAGE];
  }

  /**
   * Records a member; a later occurrence of a path replaces the earlier one (§6.1). The
   * digest may come later (setSha256), once the content has streamed past. Returns the row.
   */
  add(header: TarHeader, sha256?: string | Buffer): number {
    const r = this.newRow();
    const [p, i] = this.page(r);
    p.flags[i] = TYPE_CODE.get(header.type)!;
    p.mode[i] = header.mode;
    p.ordinal[i] = this.members++;
    p.nums.set([header.uid, header.gid, header.mtime, header.size], 4 * i);
    if (header.linkname !== undefined) this.linknames.set(r, header.linkname);
    if (header.devmajor !== undefined || header.devminor !== undefined) this.devices.set(r, [header.devmajor ?? 0, header.devminor ?? 0]);
    if (sha256 !== undefined) this.setSha256(r, sha256);
    this.contentBytes += header.size;
    // Delete first so iteration order follows the last occurrence.
    this.entries.delete(header.name);
    this.entries.set(header.name, r);
    return r;
  }

  setSha256(row: number, sha256: string | Buffer): void {
    const bytes = typeof sha256 === "string" ? Buffer.from(sha256.padEnd(64, "0").slice(0, 64), "hex") : sha256;
    const [p, i] = this.page(row);
    p.sha.set(bytes.subarray(0, 32), 32 * i);
    p.flags[i] |= HAS_SHA;
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
      if (this.entries.has(parent)) continue;
      const r = this.newRow();
      const [p, i] = this.page(r);
      p.flags[i] = TYPE_CODE.get("directory")! | IMPLICIT;
      p.ordinal[i] = -1;
      this.entries.set(parent, r);
    }
  }

  /**
   * Puts back a row exactly as `get()` returned it (ordinal, implicit flag and digest
   * included), at the end of the iteration order: reading a stored catalogue
   * (catalogue-file.ts) in `all()` order rebuilds an equal one. `members` and
   * `contentBytes` are the caller's to restore.
   */
  restore(name: string, e: CatalogueEntry): void {
    const r = this.newRow();
    const [p, i] = this.page(r);
    p.flags[i] = TYPE_CODE.get(e.type)! | (e.implicit ? IMPLICIT : 0);
    p.mode[i] = e.mode;
    p.ordinal[i] = e.ordinal;
    p.nums.set([e.uid, e.gid, e.mtime, e.size], 4 * i);
    if (e.linkname !== undefined) this.linknames.set(r, e.linkname);
    if (e.devmajor !== undefined || e.devminor !== undefined) this.devices.set(r, [e.devmajor ?? 0, e.devminor ?? 0]);
    if (e.sha256 !== undefined) this.setSha256(r, e.sha256);
    this.entries.delete(name);
    this.entries.set(name, r);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Archive position of a path's last occurrence (-1: implicit; undefined: absent). */
  ordinal(name: string): number | undefined {
    const r = this.entries.get(name);
    if (r === undefined) return undefined;
    const [p, i] = this.page(r);
    return p.ordinal[i];
  }

  get(name: string): CatalogueEntry | undefined {
    const r = this.entries.get(name);
    return r === undefined ? undefined : this.row(r);
  }

  /** Every path with its entry, in archive order of last occurrence. */
  *all(): IterableIterator<[string, CatalogueEntry]> {
    for (const [name, r] of this.entries) yield [name, this.row(r)];
  }

  private row(r: number): CatalogueEntry {
    const [p, i] = this.page(r);
    const f = p.flags[i];
    const n = p.nums;
    const e: CatalogueEntry = {
      type: TYPES[f & 0x0f],
      mode: p.mode[i],
      uid: n[4 * i],
      gid: n[4 * i + 1],
      mtime: n[4 * i + 2],
      size: n[4 * i + 3],
      ordinal: p.ordinal[i],
    };
    if (f & IMPLICIT) e.implicit = true;
    const link = this.linknames.get(r);
    if (link !== undefined) e.linkname = link;
    const dev = this.devices.get(r);
    if (dev) [e.devmajor, e.devminor] = dev;
    if (f & HAS_SHA) e.sha256 = Buffer.from(p.sha.buffer, p.sha.byteOffset + 32 * i, 32).toString("hex");
    return e;
  }
}
