/**
 * Two realistic versions of a rootfs tarball for `npm run bench`, made from the files of
 * this machine's /usr (issue 8): v1 holds about 310 MB × scale of regular files (tens of
 * thousands of small ones plus a few hundred larger libraries and binaries), symlinks and
 * hard links; v2 changes ~5 % of the files (a fifth of those keep size and mtime), removes
 * 1 %, adds 1 % (more files of /usr at their real paths) and retargets 1 % of symlinks.
 *
 * Selection is by a hash of each path, so it is deterministic on a given machine and the
 * files of scale 1 are a subset of those of scale 2. Both trees are staged on disk
 * (v2 = `cp -al` of v1, changed files unlinked before rewriting) and packed with GNU tar,
 * then `xz -6 -T0` (what `tar -cJ` gives a build farm); the staging trees are removed.
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  type Stats,
} from "node:fs";
import { dirname, join } from "node:path";

/** Rootfs-like parts of /usr (toolchains, SDKs and /usr/local are left out). */
const ROOTS = [
  "usr/bin",
  "usr/sbin",
  "usr/include",
  "usr/lib/x86_64-linux-gnu",
  "usr/lib/python3",
  "usr/lib/python3.11",
  "usr/lib/systemd",
  "usr/lib/git-core",
  "usr/libexec",
  "usr/share",
];
const SMALL = 64 << 10;
const MAX_FILE = 16 << 20;
/** Byte budgets per scale unit: small files, then larger ones. */
const SMALL_BUDGET = 150e6;
const LARGE_BUDGET = 165e6;

export interface RootfsPair {
  v1: string;
  v2: string;
  /** Uncompressed tar sizes. */
  v1Bytes: number;
  v2Bytes: number;
  summary: string;
}

/** A number in [0, 1) from a path and a salt. */
function h(path: string, salt: string): number {
  return createHash("sha1").update(`${salt}:${path}`).digest().readUInt32BE(0) / 2 ** 32;
}

interface Found {
  files: { path: string; st: Stats }[];
  symlinks: string[];
}

function walk(root: string, rel: string, out: Found): void {
  let entries;
  try {
    entries = readdirSync(join(root, rel), { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = `${rel}/${e.name}`;
    if (e.isDirectory()) walk(root, p, out);
    else if (e.isSymbolicLink()) out.symlinks.push(p);
    else if (e.isFile()) {
      const st = lstatSync(join(root, p));
      if (st.size <= MAX_FILE && st.mode & 0o004) out.files.push({ path: p, st });
    }
  }
}

function copyInto(stage: string, path: string, st: Stats): void {
  const dest = join(stage, "system", path);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(join("/", path), dest);
  utimesSync(dest, st.atime, st.mtime);
}

/** New content for a changed file: a few bytes altered; `sameSize` keeps the length. */
function edited(data: Buffer, path: string, sameSize: boolean): Buffer {
  const out = sameSize
    ? Buffer.from(data)
    : Buffer.concat([data, Buffer.from(`\n# rebuilt ${path}\n`.repeat(1 + Math.floor(h(path, "len") * 64)))]);
  const n = Math.max(1, Math.floor(data.length / 4096));
  for (let i = 0; i < n && data.length > 0; i++) {
    const at = Math.floor(h(path, `at${i}`) * data.length);
    out[at] = out[at] ^ 0x5a;
  }
  return out;
}

function uncompressedSize(xzFile: string): number {
  const robot = execFileSync("xz", ["--robot", "-l", xzFile], { encoding: "utf8" });
  const totals = robot
    .split("\n")
    .find((l) => l.startsWith("totals"))!
    .split("\t");
  return Number(totals[4]);
}

function pack(stage: string, out: string): void {
  const tmp = `${out}.part`;
  // SI_BENCH_PACK_LEVEL: a faster preset when generating big inputs on a busy machine.
  const level = Number(process.env.SI_BENCH_PACK_LEVEL ?? 6);
  execFileSync(
    "sh",
    [
      "-c",
      `tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name -C '${stage}' -cf - system | xz -${level} -T0 > '${tmp}' && mv '${tmp}' '${out}'`,
    ],
    { stdio: "inherit" },
  );
}

const tarBlocks = (n: number) => Math.ceil(n / 512) * 512;
/** Header bytes of a member (GNU long-name record for names over 100 bytes). */
const headerBytes = (name: string) => 512 + (Buffer.byteLength(name) > 100 ? 512 + tarBlocks(Buffer.byteLength(name) + 1) : 0);
/** Size of a changed file after edited(). */
function editedSize(path: string, size: number, sameSize: boolean): number {
  return sameSize ? size : size + (1 + Math.floor(h(path, "len") * 64)) * Buffer.byteLength(`\n# rebuilt ${path}\n`);
}

/**
 * Which kept files v2 changes (files with h(path, "v2") < 0.01 are removed): those below
 * 0.06 (5 %) by default; with `deltaBytes`, files in order of h(path, "v2") whose delta
 * (changed files, their hard links, `fixed` bytes of additions and symlinks) reaches that
 * size within 0.5 %, skipping files that would overshoot it (issue 8: compare at the
 * reference's delta size).
 */
function changeSet(
  chosen: Found["files"],
  deltaBytes: number | undefined,
  fixed: number,
): (f: Found["files"][number], u: number) => boolean {
  if (deltaBytes === undefined) return (_f, u) => u < 0.06;
  const candidates = chosen
    .map((f) => ({ f, u: h(f.path, "v2") }))
    .filter((c) => c.u >= 0.01)
    .sort((a, b) => a.u - b.u);
  const picked = new Set<string>();
  let total = fixed;
  for (const { f } of candidates) {
    if (total >= deltaBytes * 0.995) break;
    const name = `system/${f.path}`;
    let bytes = headerBytes(name) + tarBlocks(editedSize(f.path, f.st.size, h(f.path, "same") < 0.2));
    // Rewriting a file breaks its hard link: `.hl` keeps the old inode and becomes a file.
    if (h(f.path, "hl") < 0.01) bytes += headerBytes(`${name}.hl`) + tarBlocks(f.st.size);
    if (total + bytes > deltaBytes * 1.005) continue;
    total += bytes;
    picked.add(f.path);
  }
  return (f) => picked.has(f.path);
}

/**
 * Makes (or reuses) `dir/rootfs-v1.tar.xz` and `dir/rootfs-v2.tar.xz`. `deltaBytes`: change
 * as many files as make a delta of about that many uncompressed bytes (else 5 % of them).
 */
export function makeRootfsPair(dir: string, scale: number, log: (s: string) => void, deltaBytes?: number): RootfsPair {
  const v1 = join(dir, "rootfs-v1.tar.xz");
  const v2 = join(dir, "rootfs-v2.tar.xz");
  const summaryFile = join(dir, "summary.txt");
  if (existsSync(v1) && existsSync(v2) && existsSync(summaryFile)) {
    log(`reusing ${v1} and ${v2}`);
    return { v1, v2, v1Bytes: uncompressedSize(v1), v2Bytes: uncompressedSize(v2), summary: readFileSync(summaryFile, "utf8").trim() };
  }
  mkdirSync(dir, { recursive: true });
  const found: Found = { files: [], symlinks: [] };
  for (const r of ROOTS) walk("/", r, found);
  const byHash = [...found.files].sort((a, b) => h(a.path, "sel") - h(b.path, "sel"));
  const chosen: Found["files"] = [];
  const spare: Found["files"] = [];
  let small = 0;
  let large = 0;
  for (const f of byHash) {
    if (f.st.size <= SMALL && small < SMALL_BUDGET * scale) {
      small += f.st.size;
      chosen.push(f);
    } else if (f.st.size > SMALL && large < LARGE_BUDGET * scale) {
      large += f.st.size;
      chosen.push(f);
    } else spare.push(f);
  }
  const chosenDirs = new Set(chosen.map((f) => dirname(f.path)));
  const links = found.symlinks.filter((s) => chosenDirs.has(dirname(s)) && h(s, "sym") < Math.min(1, 0.5 * scale));

  const s1 = join(dir, "stage-v1");
  const s2 = join(dir, "stage-v2");
  rmSync(s2, { recursive: true, force: true });
  const hardlinks = chosen.filter((f) => h(f.path, "hl") < 0.01).length;
  // An interrupted run that had packed v1 left its staging tree: resume from there. A v1
  // without its tree (another delta size) is staged again, identically, but not repacked.
  if (!(existsSync(v1) && existsSync(s1))) {
    rmSync(s1, { recursive: true, force: true });
    log(`staging v1: ${chosen.length} files (${((small + large) / 1e6).toFixed(0)} MB), ${links.length} symlinks`);
    for (const f of chosen) copyInto(s1, f.path, f.st);
    for (const f of chosen) if (h(f.path, "hl") < 0.01) linkSync(join(s1, "system", f.path), join(s1, "system", `${f.path}.hl`));
    for (const s of links) {
      const dest = join(s1, "system", s);
      symlinkSync(readlinkSync(join("/", s)), dest);
      const st = lstatSync(join("/", s));
      lutimesSync(dest, st.atime, st.mtime);
    }
    if (!existsSync(v1)) pack(s1, v1);
  } else log(`reusing ${v1} and its staging tree`);

  log("staging v2");
  execFileSync("cp", ["-al", s1, s2]);
  const sys2 = join(s2, "system");
  // 1 % more files, sized like the rest (spare's head is all large files: budgets fill unevenly).
  const added: Found["files"] = [];
  let addedBytes = 0;
  for (const f of spare.sort((a, b) => h(a.path, "add") - h(b.path, "add"))) {
    if (added.length >= Math.ceil(chosen.length / 100)) break;
    if (addedBytes + f.st.size > (small + large) / 100) continue;
    added.push(f);
    addedBytes += f.st.size;
  }
  const retarget = links.filter((s) => h(s, "retarget") < 0.01);
  const fixed =
    added.reduce((n, f) => n + headerBytes(`system/${f.path}`) + tarBlocks(f.st.size), 0) +
    retarget.reduce((n, s) => n + headerBytes(`system/${s}`), 0) +
    2048;
  const changes = changeSet(chosen, deltaBytes, fixed);
  let changed = 0;
  let same = 0;
  let removed = 0;
  for (const f of chosen) {
    const u = h(f.path, "v2");
    const p = join(sys2, f.path);
    if (u < 0.01) {
      unlinkSync(p);
      removed++;
    } else if (changes(f, u)) {
      const keep = h(f.path, "same") < 0.2;
      const data = edited(readFileSync(p), f.path, keep);
      unlinkSync(p); // never write through the link to v1's inode
      writeFileSync(p, data, { mode: f.st.mode & 0o7777 });
      utimesSync(p, f.st.atime, keep ? f.st.mtime : new Date(f.st.mtimeMs + 86_400_000));
      changed++;
      if (keep) same++;
    }
  }
  for (const f of added) copyInto(s2, f.path, f.st);
  let retargeted = 0;
  for (const s of retarget) {
    const p = join(sys2, s);
    unlinkSync(p);
    symlinkSync(`${readlinkSync(join("/", s))}.new`, p);
    retargeted++;
  }
  pack(s2, v2);
  rmSync(s1, { recursive: true, force: true });
  rmSync(s2, { recursive: true, force: true });
  const summary =
    `v1: ${chosen.length} files + ${hardlinks} hard links + ${links.length} symlinks; ` +
    `v2: ${changed} changed (${same} same size+mtime), ${removed} removed, ${added.length} added, ${retargeted} symlinks retargeted`;
  writeFileSync(summaryFile, summary + "\n");
  return { v1, v2, v1Bytes: uncompressedSize(v1), v2Bytes: uncompressedSize(v2), summary };
}
