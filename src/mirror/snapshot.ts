/**
 * A consistent view of the tree for one push. Pushes run without the global lock (a slow
 * mirror must not hold imports back), so the tree may change under a push: an import
 * commits a new channels.json naming index copies the push's listing never saw, and a
 * transport reading the live channels.json in phase 5 would hand the mirror a document naming
 * files it does not have.
 *
 * So the documents rewritten in place by every commit (phases 3–5: index.json pairs, gpg/,
 * channels.json) are copied into a private directory first, channels.json first, each pair
 * only once it is settled; the tree is listed only after that. A commit installs files before
 * the documents naming them (src/tree/commit.ts), so everything a copied document names was
 * already in the tree when it was copied, and is in the listing. Phases 1–2 (content- or
 * version-named files, never rewritten) are read from the live tree.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readFile, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { writePairDir } from "./pair-dir.js";
import { phaseOf, type LocalFile } from "./plan.js";

/** Longest a pair caught between its two renames is waited for (src/server/pair-settle.ts). */
const SETTLE_MAX_MS = 2000;

export interface TreeSnapshot {
  /** Every file to mirror (relative paths), phases 3–5 as copied. */
  files: LocalFile[];
  /** Where the transport reads a phase's files from. */
  rootOf(phase: ReturnType<typeof phaseOf>): string;
  /** sha256 of the copied channels.json, null without one. */
  channelsSha256: string | null;
  /** Removes the copies. */
  close(): Promise<void>;
}

/** Files under root, relative, "/"-separated: hidden entries (temporaries) and symlinked directories left out. */
export async function listTree(root: string): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return []; // a device directory removed while we walk
      throw err;
    });
    for (const e of entries) {
      if (e.name.startsWith(".")) continue; // commit and download temporaries (.x.new-*, pool/.tmp-*)
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        await walk(join(dir, e.name), path);
        continue;
      }
      const st = await stat(join(dir, e.name)).catch(() => null); // follows a symlink to a file
      if (st?.isFile()) out.push({ path, size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
    }
  };
  await walk(root, "");
  return out;
}

const copied = (phase: string) =>
  phase === "indexes" || phase === "keyrings" || phase === "channels" || phase === "channels-pair" || phase === "channels-switch";

/**
 * Copies `rel` and `rel.asc` (either may be missing) from root to dest: both opened, then
 * both checked to still be what the paths name, and the signature renamed in no earlier than
 * its document (ctime; a commit renames the document first). Else the pair is mid-commit:
 * try again, for at most SETTLE_MAX_MS (a writer killed between its renames leaves such a
 * pair for good; the primary serves it as it is, and so does the mirror).
 */
async function copyPair(root: string, dest: string, rel: string): Promise<LocalFile[]> {
  const deadline = Date.now() + SETTLE_MAX_MS;
  for (;;) {
    const names = [rel, `${rel}.asc`];
    const handles = await Promise.all(names.map((n) => open(join(root, n), "r").catch(() => null)));
    try {
      const stats = await Promise.all(handles.map((h) => (h ? h.stat() : Promise.resolve(null))));
      const now = await Promise.all(names.map((n) => stat(join(root, n)).catch(() => null)));
      const moved = stats.some((s, i) => (s?.ino ?? -1) !== (now[i]?.ino ?? -1));
      const lags = stats[0] && stats[1] && stats[1].ctimeMs < stats[0].ctimeMs;
      if ((moved || lags) && Date.now() < deadline) {
        await sleep(5);
        continue;
      }
      const out: LocalFile[] = [];
      for (let i = 0; i < 2; i++) {
        const h = handles[i];
        const st = stats[i];
        if (!h || !st) continue;
        const to = join(dest, names[i]);
        await mkdir(dirname(to), { recursive: true });
        await writeFile(to, await h.readFile());
        await utimes(to, st.atime, st.mtime);
        out.push({ path: names[i], size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
      }
      return out;
    } finally {
      await Promise.all(handles.map((h) => (h ? h.close() : Promise.resolve())));
    }
  }
}

/** The index.json paths (relative) a channels.json names on this host. */
function namedIndexes(text: string): string[] {
  let doc: Record<string, { devices?: Record<string, { index?: unknown }> }>;
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const ch of Object.values(doc ?? {})) {
    for (const dev of Object.values(ch?.devices ?? {})) {
      const index = dev?.index;
      if (typeof index !== "string" || !index.startsWith("/") || index.startsWith("//")) continue;
      const rel = index.replace(/^\/+/, "");
      if (phaseOf(rel) === "indexes" && !rel.includes("..")) out.push(rel);
    }
  }
  return out;
}

/** Takes the snapshot of `root` into `workDir` (created; removed by close()). */
export async function takeSnapshot(root: string, workDir: string, opts: { pairDir?: boolean } = {}): Promise<TreeSnapshot> {
  await mkdir(workDir, { recursive: true });
  try {
    // Which documents exist (names only); channels.json may add a device created since.
    const docs = new Set((await listTree(root)).map((f) => f.path.replace(/\.asc$/, "")).filter((p) => copied(phaseOf(p))));
    const files: LocalFile[] = await copyPair(root, workDir, "channels.json");
    docs.delete("channels.json");
    let channelsSha256: string | null = null;
    if (files.some((f) => f.path === "channels.json")) {
      const bytes = await readFile(join(workDir, "channels.json"));
      channelsSha256 = createHash("sha256").update(bytes).digest("hex");
      for (const rel of namedIndexes(bytes.toString("utf8"))) docs.add(rel);
      if (opts.pairDir) files.push(...(await writePairDir(workDir, files)));
    }
    // Indexes before keyrings, as they are pushed; each pair settled on its own.
    const order = [...docs].sort((a, b) => Number(phaseOf(a) === "keyrings") - Number(phaseOf(b) === "keyrings") || (a < b ? -1 : 1));
    for (const rel of order) files.push(...(await copyPair(root, workDir, rel)));
    // Now the rest: whatever a copied document names is already there.
    for (const f of await listTree(root)) if (!copied(phaseOf(f.path))) files.push(f);
    return {
      files,
      rootOf: (phase) => (copied(phase) ? workDir : root),
      channelsSha256,
      close: () => rm(workDir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(workDir, { recursive: true, force: true });
    throw err;
  }
}
