/**
 * Property test: for random images and random changes, the delta applied the recovery's way
 * (test/helpers/apply-delta.ts) reproduces the new image exactly. Each seed builds an image
 * with every entry type, then mutates it: content edits that keep size and mtime, mode and
 * owner changes, symlink retargets, file/dir/symlink type changes, hard-link target edits,
 * hard-link role swaps, removals and additions. Images are written alternately by Python's
 * tarfile and by our writer, some xz-compressed; some seeds extract with busybox tar.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeDelta } from "../../src/archive/diff/index.js";
import { applyCheck } from "../helpers/apply-delta.js";
import { tempDir, writeTarWithPython, writeTarWithWriter, xzFile, type FixtureEntry } from "../helpers/tar-fixtures.js";
import { mulberry32 } from "../../bench/rng.js";

type Node = Omit<FixtureEntry, "name">;
type Image = Map<string, Node>;

class Gen {
  constructor(readonly rnd: () => number) {}
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  // No spaces, globs or backslashes: the recovery's unquoted `rm -Rf $file` mangles them.
  name(): string {
    const parts = ["a", "b", "lib", "conf", "x1", "é", "中文", "ß", "😀", "data-", "v_2", ".hidden", "Z"];
    let s = "";
    for (let i = 0, n = 1 + this.int(3); i < n; i++) s += this.pick(parts);
    if (this.chance(0.08)) s += "-" + "long".repeat(15 + this.int(15)); // paths over 100 bytes
    return s;
  }
  content(): string {
    const n = this.int(this.chance(0.1) ? 20_000 : 300);
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(33 + this.int(90));
    return s;
  }
  meta(): Pick<Node, "mode" | "uid" | "gid" | "mtime"> {
    return {
      mode: this.pick([0o644, 0o755, 0o600, 0o4755, 0o640]),
      uid: this.pick([0, 0, 1, 1000, 3_000_000]),
      gid: this.pick([0, 0, 5, 1000]),
      mtime: 1_500_000_000 + this.int(1000),
    };
  }
}

const parentOf = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
const dirs = (img: Image) => ["", ...[...img].filter(([, n]) => n.type === "directory").map(([p]) => p)];
const files = (img: Image) => [...img].filter(([, n]) => (n.type ?? "file") === "file").map(([p]) => p);
const child = (g: Gen, img: Image) => {
  const d = g.pick(dirs(img));
  return d ? `${d}/${g.name()}` : g.name();
};

function addRandom(g: Gen, img: Image): void {
  const path = child(g, img);
  if (img.has(path)) return;
  const kind = g.int(10);
  const meta = g.meta();
  if (kind < 4) img.set(path, { ...meta, content: g.content() });
  else if (kind < 6) img.set(path, { ...meta, mode: g.pick([0o755, 0o700, 0o750]), type: "directory" });
  else if (kind === 6) img.set(path, { ...meta, type: "symlink", linkname: g.pick(["../target", "/abs/x", g.name(), ...files(img)]) });
  else if (kind === 7) {
    const targets = files(img);
    if (targets.length) img.set(path, { type: "link", linkname: g.pick(targets), mtime: meta.mtime });
  } else if (kind === 8)
    img.set(path, { ...meta, type: g.pick(["character-device", "block-device"] as const), devmajor: 1 + g.int(10), devminor: g.int(300) });
  else img.set(path, { ...meta, type: "fifo" });
}

function removeTree(img: Image, path: string): void {
  for (const p of [...img.keys()]) if (p === path || p.startsWith(`${path}/`)) img.delete(p);
}

/** Hard links must point at a regular file of the image: re-point or drop the others. */
function fixLinks(g: Gen, img: Image): void {
  for (const [p, n] of img) {
    if (n.type !== "link") continue;
    const t = img.get(n.linkname!);
    if (t && (t.type ?? "file") === "file") continue;
    const targets = files(img);
    if (targets.length && g.chance(0.5)) n.linkname = g.pick(targets);
    else img.delete(p);
  }
}

function mutate(g: Gen, img: Image): void {
  const steps = 3 + g.int(10);
  for (let s = 0; s < steps; s++) {
    const all = [...img.keys()];
    if (all.length === 0) break;
    const path = g.pick(all);
    const n = { ...img.get(path)! };
    const type = n.type ?? "file";
    switch (g.int(12)) {
      case 0: // content change keeping size and mtime
        if (type === "file" && n.content) n.content = [...(n.content as string)].reverse().join("") + "";
        if (type === "file" && n.content && n.content === img.get(path)!.content) n.content = "#" + (n.content as string).slice(1);
        break;
      case 1:
        n.mode = g.pick([0o600, 0o755, 0o700, 0o444]);
        break;
      case 2:
        n.uid = g.pick([0, 7, 1000, 3_000_000]);
        n.gid = g.pick([0, 9]);
        break;
      case 3:
        if (type === "symlink") n.linkname = `${n.linkname}-retargeted`;
        else n.mtime = (n.mtime ?? 0) + 1;
        break;
      case 4: // file -> dir, dir -> file, anything -> symlink
        removeTree(img, path);
        if (type === "directory") img.set(path, { ...g.meta(), content: g.content() });
        else if (type === "file" && g.chance(0.5)) {
          img.set(path, { ...g.meta(), type: "directory", mode: 0o755 });
          img.set(`${path}/${g.name()}`, { ...g.meta(), content: g.content() });
        } else img.set(path, { ...g.meta(), type: "symlink", linkname: g.name() });
        fixLinks(g, img);
        continue;
      case 5: {
        // hard-link target content change
        const link = [...img.values()].find((x) => x.type === "link");
        if (link) {
          const t = img.get(link.linkname!)!;
          img.set(link.linkname!, { ...t, content: `${String(t.content ?? "")}+` });
        }
        continue;
      }
      case 6: {
        // hard-link role swap: a file + b->a  =>  b file + a->b (other links follow b)
        const entry = [...img].find(([, x]) => x.type === "link");
        if (entry) {
          const [b, l] = entry;
          const a = l.linkname!;
          const target = img.get(a)!;
          img.delete(b);
          img.set(b, { ...target, content: g.chance(0.5) ? `${String(target.content ?? "")}new` : target.content });
          img.set(a, { type: "link", linkname: b, mtime: target.mtime });
          for (const [, x] of img) if (x.type === "link" && x.linkname === a && x !== img.get(a)) x.linkname = b;
        }
        continue;
      }
      case 7:
      case 8:
        removeTree(img, path);
        fixLinks(g, img);
        continue;
      default:
        addRandom(g, img);
        continue;
    }
    img.set(path, n);
  }
}

/** Archive order: parents before children (shuffled siblings), hard links after their targets. */
function serialize(g: Gen, img: Image): FixtureEntry[] {
  const keys = [...img.keys()].sort((x, y) => x.split("/").length - y.split("/").length || g.rnd() - 0.5);
  const out: FixtureEntry[] = [];
  const done = new Set<string>();
  const visit = (p: string) => {
    if (done.has(p)) return;
    const parent = parentOf(p);
    if (parent && img.has(parent)) visit(parent);
    const n = img.get(p)!;
    if (n.type === "link") visit(n.linkname!);
    done.add(p);
    out.push({ name: p, ...n });
  };
  for (const k of keys) visit(k);
  return out;
}

function randomImage(g: Gen): Image {
  const img: Image = new Map();
  img.set("system", { type: "directory", mode: 0o755, mtime: 1_500_000_000 });
  for (let i = 0, n = 15 + g.int(40); i < n; i++) addRandom(g, img);
  return img;
}

const clone = (img: Image): Image => new Map([...img].map(([k, v]) => [k, { ...v }]));

async function writeImage(seed: number, path: string, entries: FixtureEntry[]): Promise<string> {
  const tar = seed % 2 === 0 ? writeTarWithPython(path, entries, "gnu") : await writeTarWithWriter(path, entries);
  return seed % 3 === 0 ? xzFile(tar) : tar;
}

describe("delta apply check over random images", () => {
  for (let seed = 1; seed <= 30; seed++) {
    it(`seed ${seed}`, async () => {
      const g = new Gen(mulberry32(seed * 7919));
      const oldImg = randomImage(g);
      const newImg = clone(oldImg);
      mutate(g, newImg);
      const dir = tempDir(`si-prop${seed}-`);
      const oldTar = await writeImage(seed, join(dir, "old.tar"), serialize(g, oldImg));
      const newTar = await writeImage(seed, join(dir, "new.tar"), serialize(g, newImg));
      const delta = join(dir, "delta.tar.xz");
      // Half the seeds (not the same half as the tar writer): "exact"; the others "content" (mtime-only changes keep the old mtime).
      const mtime = Math.floor(seed / 2) % 2 === 1 ? "exact" : "content";
      const s = await makeDelta(oldTar, newTar, delta, { xzLevel: 0, mtime });
      const context = `seed ${seed} (${mtime}): added ${s.changes.added.join(",")} changed ${s.changes.changed.join(",")} deleted ${s.changes.deleted.join(",")}`;
      expect(applyCheck(oldTar, newTar, delta, { mtime }), context).toEqual([]);
      if (seed % 5 === 0) expect(applyCheck(oldTar, newTar, delta, { tar: ["busybox", "tar"], mtime }), `${context} (busybox)`).toEqual([]);
    });
  }
});
