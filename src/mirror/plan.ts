/**
 * What one push sends, and in which order (issue 16 "Ordered publication"). Pure: the caller
 * lists the local tree and reads the mirror's manifest.
 *
 * What changed: we compare listings against the manifest of the last successful push
 * (mirror_files), not the commit log: a file is sent when it is new or its size or mtime
 * differs from the manifest. A push that failed left the old manifest, so the next one sends
 * everything the failed one may have missed (the transports skip what is already complete).
 *
 * Order: a device follows channels.json → index → files (client-protocol §3), so each phase
 * only ever names files the phases before it put in place:
 *   1 files        pool files, version tarballs, their .asc and sidecars (everything else)
 *   2 index-copies the content-named `index-<16hex>.json` (+ .asc) channels.json names
 *   3 indexes      `<channel>/<device>/index.json` pairs (the installer reads them, §10.1)
 *   4 keyrings     `gpg/`: a rotated image-signing keyring must be there before the
 *                  channels.json it signed (the device re-fetches it on a bad signature, §3 step 4)
 *   5 channels     channels.json + .asc, last: from this moment devices see the new tree.
 *                  On rsync mirrors it is preceded by `channels-pair` (the pair under a new
 *                  directory) and `channels-switch` (one symlink naming that directory, replaced
 *                  by a single rename): a web server that serves /channels.json and its .asc
 *                  through the symlink (the nginx site's `location = /channels.json`) never
 *                  pairs an old document with a new signature for longer than one request,
 *                  however slow the disk makes the gap between two renames (pair-dir.ts).
 * then removals, in a later pass (below).
 *
 * Inside a phase, order barely matters: phases are pushed whole, one transport run each, and
 * rsync's --delay-updates renames a phase's files into place together at its end, so a
 * document and its .asc arrive within one rename loop whatever their order in the list. An
 * object store (rclone) puts each object under its final name only once complete; there the
 * phase boundary is the guarantee, not the order within.
 *
 * Removals (files on the manifest that are gone locally: expired images, orphans, superseded
 * index copies) are never sent with the push that finds them: a device holding the previous
 * channels.json may still fetch what it names. The push that first finds a file gone records
 * `removable_after` = the end of that push + the versioned_index retention (RETAIN_MS in
 * src/tree/versioned-index.ts, the grace the primary itself gives superseded index copies);
 * a later push after that time removes it from the mirror.
 */

export type PhaseName = "files" | "index-copies" | "indexes" | "keyrings" | "channels-pair" | "channels-switch" | "channels";
export const PHASES: readonly PhaseName[] = [
  "files",
  "index-copies",
  "indexes",
  "keyrings",
  "channels-pair",
  "channels-switch",
  "channels",
];

/**
 * The atomic channels.json pair of rsync mirrors (pair-dir.ts): `.si/channels/<sha16>/` holds
 * the pair, `.si/channels/current` (a symlink, replaced by one rename) names the live one.
 */
export const PAIR_DIR = ".si/channels";
export const PAIR_SWITCH = `${PAIR_DIR}/current`;

/** A file of the local tree: path relative to publish_path, "/"-separated. */
export interface LocalFile {
  path: string;
  size: number;
  mtimeMs: number;
}

/** A row of the mirror's manifest (mirror_files). */
export interface ManifestEntry extends LocalFile {
  /** Set once the file is gone locally: when it may be removed from the mirror (ms). */
  removableAfter: number | null;
}

export interface Phase {
  name: PhaseName;
  /** Relative paths, code-point sorted. */
  files: string[];
}

export interface PushPlan {
  /** All five phases in order; a phase with nothing changed has no files. */
  phases: Phase[];
  /** Gone locally, first noticed now: the manifest gets removable_after = push end + grace. */
  newlyGone: string[];
  /** Gone locally and past their removable_after: this push removes them. */
  dueRemovals: string[];
  /** Gone locally, still inside the grace (with when they become removable, ms). */
  pendingRemovals: { path: string; removableAfter: number }[];
  /** Back locally, unchanged, during their grace: the mark is cleared. */
  returned: string[];
}

const INDEX_COPY = /(^|\/)index-[0-9a-f]{16}\.json(\.asc)?$/;
const INDEX_JSON = /(^|\/)index\.json(\.asc)?$/;

/** The phase a path of the tree belongs to. */
export function phaseOf(path: string): PhaseName {
  if (path === "channels.json" || path === "channels.json.asc") return "channels";
  if (path === PAIR_SWITCH) return "channels-switch";
  if (path.startsWith(`${PAIR_DIR}/`)) return "channels-pair";
  if (path.startsWith("gpg/")) return "keyrings";
  if (path.startsWith("pool/")) return "files";
  if (INDEX_JSON.test(path)) return "indexes";
  if (INDEX_COPY.test(path)) return "index-copies";
  return "files";
}

/**
 * Documents whose URL keeps its name across commits, which a CDN may have cached: channels.json,
 * every index.json, the gpg/ keyrings (+ .asc). Pool files, version tarballs and index copies
 * are content- or version-named: a new one has a new URL, nothing to purge.
 */
export function isMutableDocument(path: string): boolean {
  if (path === "channels.json" || path === "channels.json.asc") return true;
  if (path.startsWith("gpg/")) return /\.tar\.xz(\.asc)?$/.test(path);
  return !path.startsWith("pool/") && INDEX_JSON.test(path);
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The push for a mirror whose last successful push left `manifest`, given the local tree now.
 * Entries in both with the same size and mtime are already on the mirror.
 */
export function planPush(local: readonly LocalFile[], manifest: readonly ManifestEntry[], now: number): PushPlan {
  const known = new Map(manifest.map((m) => [m.path, m]));
  const present = new Set<string>();
  const byPhase = new Map<PhaseName, string[]>(PHASES.map((p) => [p, []]));
  const returned: string[] = [];
  for (const f of local) {
    present.add(f.path);
    const m = known.get(f.path);
    // A file that came back during its grace has removable_after set but may still be on the
    // mirror unchanged: then nothing to send (the manifest update clears the mark).
    if (m && m.size === f.size && m.mtimeMs === f.mtimeMs) {
      if (m.removableAfter !== null) returned.push(f.path);
      continue;
    }
    byPhase.get(phaseOf(f.path))!.push(f.path);
  }
  const plan: PushPlan = {
    phases: PHASES.map((name) => ({ name, files: byPhase.get(name)!.sort(byCodePoint) })),
    newlyGone: [],
    dueRemovals: [],
    pendingRemovals: [],
    returned: returned.sort(byCodePoint),
  };
  for (const m of [...manifest].sort((a, b) => byCodePoint(a.path, b.path))) {
    if (present.has(m.path)) continue;
    if (m.removableAfter === null) plan.newlyGone.push(m.path);
    else if (m.removableAfter <= now) plan.dueRemovals.push(m.path);
    else plan.pendingRemovals.push({ path: m.path, removableAfter: m.removableAfter });
  }
  return plan;
}

/** Files the phases send. */
export function planFiles(plan: PushPlan): string[] {
  return plan.phases.flatMap((p) => p.files);
}
