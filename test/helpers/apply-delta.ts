/**
 * The apply check: applies a delta the way the recovery does (client-protocol §8.3) and
 * compares the result with the new image unpacked directly.
 *   1. unpack the old image (GNU tar --numeric-owner, as root);
 *   2. extract only `removed`, then `while read file; do rm -Rf $file; done` in /bin/sh,
 *      the recovery's own unquoted loop;
 *   3. extract the whole delta with --numeric-owner, delete `removed`;
 *   4. compare entry by entry with the unpacked new image: type, mode, uid/gid, mtime (not
 *      for directories), content, link target, hard-link identity, device numbers.
 *      Under the "content" mtime policy (the default, compare.ts) an entry whose only
 *      difference between the old and the new image is its mtime must keep the OLD mtime
 *      (the delta leaves it out); everything else, and every mtime under "exact", must be
 *      the new image's exactly.
 * `tar` can be ["busybox", "tar"], the recovery's tar; it then unpacks all three archives,
 * as on a device where full images are unpacked by the recovery too.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, type Stats } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./tar-fixtures.js";

export interface ApplyOptions {
  /** Tar that extracts the delta: GNU tar (default) or ["busybox", "tar"]. */
  tar?: string[];
  /** The delta's mtime policy (default "content", as the server's). */
  mtime?: "content" | "exact";
}

/** busybox tar leaves symlinks with the extraction time: their mtimes cannot be compared. */
const symlinkTimesKept = (opts: ApplyOptions) => (opts.tar ?? ["tar"])[0] !== "busybox";

function untar(archive: string, dir: string, tar: string[] = ["tar"], members: string[] = []): void {
  // GNU tar sniffs xz by itself; busybox needs to be told.
  const xz = archive.endsWith(".xz") ? ["-J"] : [];
  const [cmd, ...pre] = tar;
  execFileSync(cmd, [...pre, "--numeric-owner", ...xz, "-x", "-f", archive, "-C", dir, ...members], {
    stdio: ["ignore", "ignore", "pipe"],
  });
}

/** Unpacks an image into a new temporary directory. */
export function unpackImage(archive: string, tar?: string[]): string {
  const dir = tempDir("si-unpack-");
  untar(archive, dir, tar);
  return dir;
}

/** Applies `delta` in place over `root` (an unpacked old image), recovery style. */
export function applyDeltaInPlace(root: string, delta: string, opts: ApplyOptions = {}): void {
  untar(delta, root, opts.tar, ["removed"]);
  execFileSync("/bin/sh", ["-c", "while read file; do rm -Rf $file; done < removed"], { cwd: root });
  untar(delta, root, opts.tar);
  rmSync(join(root, "removed"));
}

export interface Snapshot {
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  mtime?: number;
  content?: string;
  target?: string;
  rdev?: number;
  /** Other paths sharing the inode (hard-link identity). */
  links?: string;
}

function kindOf(st: Stats): string {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "chr";
  if (st.isBlockDevice()) return "blk";
  if (st.isFIFO()) return "fifo";
  return "other";
}

/** Every path under `root` with what the check compares. */
export function snapshotTree(root: string, symlinkTimes = true): Map<string, Snapshot> {
  const stats = new Map<string, Stats>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      stats.set(p, st);
      if (st.isDirectory()) walk(p);
    }
  };
  walk("");
  const byInode = new Map<number, string[]>();
  for (const [p, st] of stats) {
    if (st.isDirectory() || st.nlink < 2) continue;
    const list = byInode.get(st.ino) ?? [];
    list.push(p);
    byInode.set(st.ino, list);
  }
  const out = new Map<string, Snapshot>();
  for (const [p, st] of stats) {
    const s: Snapshot = { kind: kindOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    if (!st.isDirectory() && (symlinkTimes || !st.isSymbolicLink())) s.mtime = Math.floor(st.mtimeMs / 1000);
    if (st.isFile())
      s.content = createHash("sha256")
        .update(readFileSync(join(root, p)))
        .digest("hex");
    if (st.isSymbolicLink()) s.target = readlinkSync(join(root, p));
    if (st.isCharacterDevice() || st.isBlockDevice()) s.rdev = st.rdev;
    const group = byInode.get(st.ino);
    if (group && !st.isDirectory()) s.links = [...group].sort().join("|");
    out.set(p, s);
  }
  return out;
}

/**
 * Differences between two trees, one readable line each; empty when identical. `keptFrom`
 * (the "content" mtime policy): a snapshot of the tree before the update; an entry that
 * differed from it only in its mtime must still have the old mtime.
 */
export function compareTrees(actualRoot: string, expectedRoot: string, symlinkTimes = true, keptFrom?: Map<string, Snapshot>): string[] {
  const actual = snapshotTree(actualRoot, symlinkTimes);
  const expected = snapshotTree(expectedRoot, symlinkTimes);
  const problems: string[] = [];
  for (const [p, want] of expected) {
    const before = keptFrom?.get(p);
    const e =
      before && before.mtime !== want.mtime && JSON.stringify({ ...before, mtime: want.mtime }) === JSON.stringify(want) ? before : want;
    const a = actual.get(p);
    if (!a) problems.push(`missing: ${p}`);
    else if (JSON.stringify(a) !== JSON.stringify(e)) problems.push(`differs: ${p}: got ${JSON.stringify(a)}, want ${JSON.stringify(e)}`);
  }
  for (const p of actual.keys()) if (!expected.has(p)) problems.push(`extra: ${p}`);
  return problems;
}

/** The whole check: unpack old, apply delta, compare with the unpacked new image. */
export function applyCheck(oldImage: string, newImage: string, delta: string, opts: ApplyOptions = {}): string[] {
  const applied = unpackImage(oldImage, opts.tar);
  const expected = unpackImage(newImage, opts.tar);
  try {
    const before = opts.mtime === "exact" ? undefined : snapshotTree(applied, symlinkTimesKept(opts));
    applyDeltaInPlace(applied, delta, opts);
    return compareTrees(applied, expected, symlinkTimesKept(opts), before);
  } finally {
    rmSync(applied, { recursive: true, force: true });
    rmSync(expected, { recursive: true, force: true });
  }
}
