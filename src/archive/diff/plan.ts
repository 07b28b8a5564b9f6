/**
 * The order of the delta's members. Pure.
 *
 * `removed` comes first (§6.4). Then the members to write, in the NEW image's archive order
 * with one change for compression: executables and shared libraries (a `bin/`, `sbin/` or
 * `libexec/` directory, or `.so` in the name) that share a name stem (`perl` and
 * `libperl.so.5.36.0` → "perl") are written together, at the place of the group's FIRST
 * member. xz compresses each block alone (`delta_xz_block_mib`), so a file can only borrow
 * from similar bytes in its own block: on the Debian phone pair (README, "Delta size")
 * `perl` and `libperl.so`, 40 % alike, sat 47.6 MB apart. Measured there with 16 MiB blocks
 * against the reference's one `xz -9` block: archive order 1.042×; groups at their first
 * member 1.015× (libraries join their programs early in the archive, so machine code
 * clusters); the same groups at their last member only 1.040×; every file grouped by stem
 * (`__init__.pyc` from everywhere) 1.020×; the files that really are ELF 1.015× (names
 * predict it: 117 of 129, + 5 others).
 * A member pulled forward arrives later in the new image than members the delta writes after
 * it: write.ts holds those until their turn (spilled to disk beyond a small memory budget).
 * A file never goes before a directory on its own path that the delta writes too (tar would
 * first create it with default permissions), and hard links wait until their target has been
 * written (client-protocol §8.3: tar links to what is already on disk).
 */
import type { Catalogue } from "./catalogue.js";

/** `removed` member content: one path per line, each followed by "\n"; "\n" when empty (§6.4). */
export function removedContent(removed: readonly string[]): Buffer {
  return Buffer.from(removed.length === 0 ? "\n" : removed.map((p) => `${p}\n`).join(""), "utf8");
}

/**
 * The name shared by files likely to hold similar bytes: the basename without a `lib`
 * prefix, up to its first `.` or `-` (`libperl.so.5.36.0`, `perl` → "perl";
 * `foo.cpython-311.pyc` → "foo").
 */
export function similarityStem(path: string): string {
  let base = path.slice(path.lastIndexOf("/") + 1);
  if (base.startsWith("lib") && base.length > 3) base = base.slice(3);
  const end = base.search(/[.-]/);
  return end === -1 ? base : base.slice(0, end);
}

/** Whether a path names an executable or a shared library (what grouping pays off for). */
export function isBinaryLike(path: string): boolean {
  return /(^|\/)(s?bin|libexec)\//.test(path) || /\.so(\.|$)/.test(path.slice(path.lastIndexOf("/") + 1));
}

/** Archive order, with binary-like regular files moved to their stem group's first member (see above). */
function groupedOrder(newCat: Catalogue, write: ReadonlySet<string>): string[] {
  const ordinal = (p: string) => newCat.ordinal(p)!;
  const isGrouped = (p: string) => newCat.get(p)!.type === "file" && isBinaryLike(p);
  const anchor = new Map<string, number>();
  for (const p of write) {
    if (!isGrouped(p)) continue;
    const stem = similarityStem(p);
    anchor.set(stem, Math.min(anchor.get(stem) ?? Infinity, ordinal(p)));
  }
  /** The last directory on `p`'s path that the delta writes: `p` may not come before it. */
  const floor = (p: string): number => {
    let at = -1;
    for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) {
      const dir = p.slice(0, i);
      if (write.has(dir) && newCat.get(dir)!.type === "directory") at = Math.max(at, ordinal(dir));
    }
    return at;
  };
  const place = new Map<string, number>();
  for (const p of write) place.set(p, isGrouped(p) ? Math.max(anchor.get(similarityStem(p))!, floor(p)) : ordinal(p));
  // Ties: the anchor (or the directory) itself first, then the pulled members in archive order.
  return [...write].sort((a, b) => place.get(a)! - place.get(b)! || ordinal(a) - ordinal(b));
}

/** Paths to write, in the order they must appear in the delta (after `removed`). */
export function planMemberOrder(newCat: Catalogue, write: ReadonlySet<string>): string[] {
  const byOrdinal = groupedOrder(newCat, write);
  const out: string[] = [];
  const written = new Set<string>();
  const waiting = new Map<string, string[]>();

  const emit = (path: string): void => {
    const stack = [path];
    while (stack.length > 0) {
      const p = stack.pop()!;
      out.push(p);
      written.add(p);
      const released = waiting.get(p);
      if (released) {
        waiting.delete(p);
        // Reverse so the released links keep their archive order.
        for (let i = released.length - 1; i >= 0; i--) stack.push(released[i]);
      }
    }
  };

  for (const path of byOrdinal) {
    const e = newCat.get(path)!;
    const target = e.type === "link" ? e.linkname : undefined;
    if (target !== undefined && target !== path && write.has(target) && !written.has(target)) {
      const list = waiting.get(target);
      if (list) list.push(path);
      else waiting.set(target, [path]);
      continue;
    }
    emit(path);
  }
  // Only a cycle of links can still wait; such an image cannot be extracted either.
  const stuck = [...waiting.values()].flat().filter((p) => !written.has(p));
  stuck.sort((a, b) => newCat.ordinal(a)! - newCat.ordinal(b)!);
  for (const p of stuck) if (!written.has(p)) emit(p);
  return out;
}
