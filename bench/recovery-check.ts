/**
 * The recovery-apply check of bench:reference (issue 19): a delta applied the way the
 * device's recovery does (client-protocol §8.3) over the old image, compared with the new
 * image unpacked directly.
 *   1. unpack v1 (GNU tar --numeric-owner -xpf, as root);
 *   2. extract `removed` and run the recovery's own loop `while read file; do rm -Rf $file; done`;
 *   3. extract the delta with `tar --numeric-owner -xpf`, delete `removed`;
 *   4. compare every path with v2 unpacked: type, mode, uid/gid, content (sha256), link target
 *      and device numbers must be equal (a *mismatch* otherwise, as is a missing or extra
 *      path); an mtime that differs (not for directories, whose mtimes the loop changes)
 *      counts as a *stale mtime*, separately: the reference leaves mtime-only changes out.
 * Files are hashed as streams: memory does not grow with the image.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync, type Stats } from "node:fs";
import { join } from "node:path";

export interface Entry {
  /** type, mode, owner, content / target / device numbers: what must match. */
  key: string;
  /** Whole seconds; undefined for directories. */
  mtime?: number;
}

export type Snapshot = Map<string, Entry>;

export interface CheckResult {
  mismatches: number;
  staleMtimes: number;
  /** The first few mismatches, one readable line each. */
  examples: string[];
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

async function sha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Every path under `root` with what the check compares. */
export async function snapshotTree(root: string): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const walk = async (rel: string): Promise<void> => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const abs = join(root, p);
      const st = lstatSync(abs);
      const kind = kindOf(st);
      let what = "";
      if (st.isFile()) what = await sha256(abs);
      else if (st.isSymbolicLink()) what = `-> ${readlinkSync(abs)}`;
      else if (st.isCharacterDevice() || st.isBlockDevice()) what = `rdev ${st.rdev}`;
      const key = `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`;
      out.set(p, st.isDirectory() ? { key } : { key, mtime: Math.floor(st.mtimeMs / 1000) });
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk("");
  return out;
}

function untar(archive: string, dir: string, members: string[] = []): void {
  execFileSync("tar", ["--numeric-owner", "-xpf", archive, "-C", dir, ...members], { stdio: ["ignore", "ignore", "pipe"] });
}

/** Unpacks `archive` into a new directory under `parent`. */
export function unpack(archive: string, parent: string): string {
  const dir = mkdtempSync(join(parent, "unpack-"));
  untar(archive, dir);
  return dir;
}

/** Applies `delta` over the unpacked old image `root`, as the recovery does. */
export function applyDelta(root: string, delta: string): void {
  untar(delta, root, ["removed"]);
  execFileSync("/bin/sh", ["-c", "while read file; do rm -Rf $file; done < removed"], { cwd: root });
  untar(delta, root);
  rmSync(join(root, "removed"), { force: true });
}

export function compare(actual: Snapshot, expected: Snapshot): CheckResult {
  const r: CheckResult = { mismatches: 0, staleMtimes: 0, examples: [] };
  const bad = (line: string) => {
    r.mismatches++;
    if (r.examples.length < 5) r.examples.push(line);
  };
  for (const [p, e] of expected) {
    const a = actual.get(p);
    if (!a) bad(`missing: ${p}`);
    else if (a.key !== e.key) bad(`differs: ${p}: got ${a.key}, want ${e.key}`);
    else if (a.mtime !== e.mtime) r.staleMtimes++;
  }
  for (const p of actual.keys()) if (!expected.has(p)) bad(`extra: ${p}`);
  return r;
}

/** The whole check of one delta against v2's snapshot; scratch space under `scratch`. */
export async function checkDelta(v1: string, delta: string, expected: Snapshot, scratch: string): Promise<CheckResult> {
  const root = unpack(v1, scratch);
  try {
    applyDelta(root, delta);
    return compare(await snapshotTree(root), expected);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
