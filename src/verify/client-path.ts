/**
 * The upgrade path a system-image 3.3 client picks (client-protocol §6), reproduced exactly,
 * tie-breaks included: candidates come from Python *sets* of images, so their order (which
 * decides equal scores) is CPython's set iteration order over `hash(image)` =
 * `(version << 16) + base` (systemimage/image.py). Pure: no IO.
 */
import type { FileEntry, Image } from "../model/index-doc.js";
import { devicePhase } from "./py-random.js";

export const MiB = 1 << 20;

/** Image.__hash__: 16-bit version and base, base 0 for fulls; larger values assert. */
export function imageHash(img: Image): number {
  const base = img.type === "delta" ? (img.base ?? 0) : 0;
  if (!(base >= 0 && base < 65536 && img.version >= 0 && img.version < 65536)) {
    throw new RangeError("AssertionError: 16 bit unsigned version numbers only");
  }
  return img.version * 65536 + base;
}

/**
 * A CPython set filled by `add()` in the given order, returned in iteration (table) order.
 * Open addressing as in Objects/setobject.c (3.7-3.12): 8 slots, 9 linear probes, then
 * perturbed probing; resize to the next power of two above used*4 once fill*5 >= mask*3.
 * Items with equal hashes are equal (Image.__eq__ compares hashes): the first one stays.
 */
export function pySetOrder<T>(items: Iterable<T>, hash: (item: T) => number): T[] {
  type Slot = { h: number; v: T };
  const LINEAR_PROBES = 9;
  let table = new Array<Slot | undefined>(8);
  let mask = 7;
  let fill = 0;
  const place = (tbl: (Slot | undefined)[], m: number, slot: Slot, dedupe: boolean): boolean => {
    let perturb = slot.h;
    let i = slot.h % (m + 1);
    for (;;) {
      const probes = i + LINEAR_PROBES <= m ? LINEAR_PROBES : 0;
      for (let j = 0; j <= probes; j++) {
        const e = tbl[i + j];
        if (e === undefined) {
          tbl[i + j] = slot;
          return true;
        }
        if (dedupe && e.h === slot.h) return false;
      }
      perturb = Math.floor(perturb / 32); // PERTURB_SHIFT 5, on an unsigned size_t
      i = (i * 5 + 1 + perturb) % (m + 1);
    }
  };
  for (const v of items) {
    if (!place(table, mask, { h: hash(v), v }, true)) continue;
    fill++;
    if (fill * 5 < mask * 3) continue;
    let size = 8;
    while (size <= fill * 4) size *= 2; // no deletions here, so used == fill
    const next = new Array<Slot | undefined>(size);
    for (const s of table) if (s) place(next, size - 1, s, false);
    table = next;
    mask = size - 1;
  }
  return table.filter((s): s is Slot => s !== undefined).map((s) => s.v);
}

/** candidates.get_candidates(index, build): every path from `build`, in the client's order. */
export function getCandidates(images: readonly Image[], build: number): Image[][] {
  const fulls = pySetOrder(
    images.filter((i) => i.type === "full" && (i.minversion ?? 0) <= build),
    imageHash,
  );
  for (const i of images) {
    if (i.type !== "full" && i.type !== "delta") throw new TypeError(`AssertionError: unknown image type: ${i.type}`);
  }
  const deltas = pySetOrder(
    images.filter((i) => i.type === "delta"),
    imageHash,
  );
  // _Chaser: push = appendleft, iteration = pop() from the right, so first in, first out.
  const queue: Image[][] = [];
  for (const f of fulls) if (f.version > build) queue.push([f]);
  for (const d of deltas) if (d.base === build) queue.push([d]);
  const paths: Image[][] = [];
  while (queue.length > 0) {
    const path = queue.shift()!;
    let current = path[path.length - 1];
    for (;;) {
      const next = deltas.filter((d) => d.base === current.version);
      if (next.length === 0) {
        paths.push(path);
        break;
      }
      // A fork: the last branch continues this path, the others are queued as copies.
      current = next.pop()!;
      for (const fork of next) queue.push([...path, fork]);
      path.push(current);
    }
  }
  return paths;
}

const pathSize = (path: Image[]) => path.reduce((n, img) => n + img.files.reduce((m, f) => m + f.size, 0), 0);

/** WeightedScorer.score: 100 per bootme, +1 per MiB over the smallest, +9001 per version short. */
export function weightedScores(candidates: Image[][]): number[] {
  if (candidates.length === 0) return [];
  const maxBuild = Math.max(0, ...candidates.map((p) => p[p.length - 1].version));
  const minSize = Math.min(...candidates.map(pathSize));
  return candidates.map((path) => {
    const reboots = path.filter((i) => i.bootme).length;
    const distance = maxBuild - path[path.length - 1].version;
    return 100 * reboots + Math.floor((pathSize(path) - minSize) / MiB) + 9001 * distance;
  });
}

const phasedPercentage = (img: Image) => (typeof img["phased-percentage"] === "number" ? img["phased-percentage"] : 100);

export interface Choice {
  winner: Image[];
  /** Candidates in score order, with their scores. */
  ranked: { score: number; path: Image[] }[];
  /** The device's phase (the override when one was given). */
  phase: number;
}

/**
 * Scorer.choose: rank by (score, candidate order), then take the first path whose LAST image
 * admits the device's phase (0 = pulled). `channel` is the alias of the channel, else the
 * device's channel_target (null → the literal "None" in the seed).
 */
export function choosePath(candidates: Image[][], opts: { channel: string | null; machineId: string; phaseOverride?: number }): Choice {
  if (candidates.length === 0) return { winner: [], ranked: [], phase: opts.phaseOverride ?? 0 };
  const scores = weightedScores(candidates);
  const ranked = candidates.map((path, i) => ({ score: scores[i], i, path })).sort((a, b) => a.score - b.score || a.i - b.i);
  const maxTarget = Math.max(...candidates.map((p) => p[p.length - 1].version));
  const phase = opts.phaseOverride ?? devicePhase(opts.channel, maxTarget, opts.machineId);
  const winner = ranked.find(({ path }) => {
    const pct = phasedPercentage(path[path.length - 1]);
    return pct > 0 && phase <= pct;
  });
  return { winner: winner?.path ?? [], ranked: ranked.map(({ score, path }) => ({ score, path })), phase };
}

/** iter_path: (image number, file) up to and including the first image with bootme. */
export function iterPath(winner: Image[]): { n: number; file: FileEntry }[] {
  const out: { n: number; file: FileEntry }[] = [];
  for (const [n, img] of winner.entries()) {
    for (const file of img.files) out.push({ n, file });
    if (img.bootme) break;
  }
  return out;
}

const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** Python's tuple ordering on (image number, order, file name, signature name). */
function compareEntries(a: { n: number; file: FileEntry }, b: { n: number; file: FileEntry }): number {
  const ka = [a.n, a.file.order, basename(a.file.path), basename(a.file.signature)] as const;
  const kb = [b.n, b.file.order, basename(b.file.path), basename(b.file.signature)] as const;
  for (let i = 0; i < 4; i++) {
    if (ka[i] < kb[i]) return -1;
    if (ka[i] > kb[i]) return 1;
  }
  return 0;
}

/**
 * The ubuntu_command the client writes for `winner` (state.py _prepare_recovery,
 * client-protocol §8.2). `format system` is decided over the whole winner, the updates over
 * iter_path (bootme cuts them).
 */
export function ubuntuCommand(winner: Image[], opts: { deviceKeyring: boolean }): string {
  const lines = ["load_keyring image-master.tar.xz image-master.tar.xz.asc", "load_keyring image-signing.tar.xz image-signing.tar.xz.asc"];
  if (opts.deviceKeyring) lines.push("load_keyring device-signing.tar.xz device-signing.tar.xz.asc");
  if (winner.some((i) => i.type === "full")) lines.push("format system");
  lines.push("mount system");
  for (const { file } of iterPath(winner).sort(compareEntries)) lines.push(`update ${basename(file.path)} ${basename(file.signature)}`);
  lines.push("unmount system");
  return lines.join("\n") + "\n";
}

/** "1:2" as the client logs an upgrade path. */
export const pathLabel = (path: Image[]) => path.map((i) => i.version).join(":");
