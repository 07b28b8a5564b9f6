/**
 * The §6.3 classification table, row by row, with our semantics (compare.ts). Every row also
 * runs the apply check: the delta applied recovery-style must reproduce the new image (with
 * the "content" mtime policy, the default: except mtime-only changes, which keep the old
 * mtime). Rows where we deliberately differ from the reference say so ("DIFFERENCE"); rows
 * where the mtime policy matters run under both policies.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeDelta } from "../../src/archive/diff/index.js";
import type { DeltaMtimePolicy } from "../../src/config/types.js";
import { applyCheck } from "../helpers/apply-delta.js";
import { listTarWithPython, tempDir, writeTarWithWriter, type FixtureEntry } from "../helpers/tar-fixtures.js";

interface Outcome {
  added: string[];
  changed: string[];
  deleted: string[];
  removed: string;
  members: string[];
}

async function diffCase(oldEntries: FixtureEntry[], newEntries: FixtureEntry[], mtime: DeltaMtimePolicy = "content"): Promise<Outcome> {
  const dir = tempDir("si-diffcase-");
  const oldTar = await writeTarWithWriter(join(dir, "old.tar"), oldEntries);
  const newTar = await writeTarWithWriter(join(dir, "new.tar"), newEntries);
  const delta = join(dir, "delta.tar.xz");
  const s = await makeDelta(oldTar, newTar, delta, { xzLevel: 0, mtime });
  const listed = listTarWithPython(delta);
  // The recovery's procedure must land exactly on the new image (mtimes as the policy says).
  expect(applyCheck(oldTar, newTar, delta, { mtime })).toEqual([]);
  if (mtime === "content" && s.changes.changed.length + s.changes.deleted.length + s.changes.added.length === 0) {
    // The strict check must catch a device that kept old mtimes where "exact" was promised.
    const changedMtime = newEntries.some((n) => oldEntries.some((o) => o.name === n.name && o.mtime !== n.mtime && n.type !== "directory"));
    if (changedMtime) expect(applyCheck(oldTar, newTar, delta, { mtime: "exact" })).not.toEqual([]);
  }
  return {
    added: s.changes.added,
    changed: s.changes.changed,
    deleted: s.changes.deleted,
    removed: listed[0].content!,
    members: listed.slice(1).map((m) => m.name),
  };
}

const T = 1_600_000_000;
const file = (name: string, content = "data", extra: Partial<FixtureEntry> = {}): FixtureEntry => ({ name, content, mtime: T, ...extra });
const dirE = (name: string, extra: Partial<FixtureEntry> = {}): FixtureEntry => ({ name, type: "directory", mtime: T, ...extra });
const sym = (name: string, linkname: string, extra: Partial<FixtureEntry> = {}): FixtureEntry => ({
  name,
  type: "symlink",
  linkname,
  mtime: T,
  ...extra,
});
const hard = (name: string, linkname: string, mtime = T): FixtureEntry => ({ name, type: "link", linkname, mtime });
const NONE = { added: [], changed: [], deleted: [], removed: "\n", members: [] };

describe("§6.3 table with content- and metadata-based detection", () => {
  it("file, same content, only mtime differs -> ignored with 'content' (as the reference), mod with 'exact'", async () => {
    expect(await diffCase([file("f")], [file("f", "data", { mtime: T + 1 })])).toEqual(NONE);
    expect(await diffCase([file("f")], [file("f", "data", { mtime: T + 1 })], "exact")).toEqual({
      ...NONE,
      changed: ["f"],
      removed: "f\n",
      members: ["f"],
    });
  });

  it("file, content differs with equal size and mtime, under both policies -> mod", async () => {
    for (const policy of ["content", "exact"] as const) {
      expect(await diffCase([file("f", "AAAA")], [file("f", "BBBB")], policy)).toMatchObject({
        changed: ["f"],
        removed: "f\n",
        members: ["f"],
      });
    }
  });

  it("'content': mtime-only changes are left out while real changes beside them ship with their new mtime", async () => {
    const oldE = [
      dirE("d"),
      file("d/touched"),
      file("d/edited", "v1"),
      sym("d/s", "a"),
      file("d/hl-target", "same"),
      hard("d/hl", "d/hl-target"),
    ];
    const newE = [
      dirE("d"),
      file("d/touched", "data", { mtime: T + 9 }),
      file("d/edited", "v2", { mtime: T + 9 }),
      sym("d/s", "b"),
      file("d/hl-target", "same", { mtime: T + 9 }),
      hard("d/hl", "d/hl-target"),
    ];
    expect(await diffCase(oldE, newE)).toEqual({
      ...NONE,
      changed: ["d/edited", "d/s"],
      removed: "d/edited\nd/s\n",
      members: ["d/edited", "d/s"],
    });
    expect((await diffCase(oldE, newE, "exact")).changed).toEqual(["d/edited", "d/hl", "d/hl-target", "d/s", "d/touched"]);
  });

  it("file, content and size differ -> mod", async () => {
    expect(await diffCase([file("f")], [file("f", "longer data")])).toMatchObject({ changed: ["f"], removed: "f\n", members: ["f"] });
  });

  it("file, content differs with equal size, mtime and metadata -> mod (DIFFERENCE: the reference never sees it)", async () => {
    expect(await diffCase([file("f", "AAAA")], [file("f", "BBBB")])).toMatchObject({ changed: ["f"], members: ["f"] });
  });

  it("mode, uid or gid change on a file -> mod", async () => {
    const out = await diffCase(
      [file("m"), file("u"), file("g")],
      [file("m", "data", { mode: 0o600 }), file("u", "data", { uid: 5 }), file("g", "data", { gid: 6 })],
    );
    expect(out.changed).toEqual(["g", "m", "u"]);
  });

  it("uname/gname change only -> ignored (the recovery extracts with --numeric-owner)", async () => {
    expect(await diffCase([file("f", "x", { uname: "a", gname: "b" })], [file("f", "x", { uname: "c", gname: "d" })])).toEqual(NONE);
  });

  it("'0' vs NUL type character only -> ignored (DIFFERENCE: the reference counts it; same file on disk)", async () => {
    expect(await diffCase([file("f", "x", { typeflag: "0" })], [file("f", "x", { typeflag: "\0" })])).toEqual(NONE);
  });

  it("directory mode or owner change -> rewritten but NOT listed in removed, under both policies (DIFFERENCE: reference ignores it)", async () => {
    for (const policy of ["content", "exact"] as const) {
      const out = await diffCase(
        [dirE("d", { mode: 0o755 }), file("d/keep")],
        [dirE("d", { mode: 0o700, uid: 3 }), file("d/keep")],
        policy,
      );
      // rm -Rf d would take d/keep with it; the header alone fixes mode and owner.
      expect(out).toEqual({ ...NONE, changed: ["d"], members: ["d"] });
    }
  });

  it("directory mtime change only -> ignored (directory mtimes are not reproducible by the recovery)", async () => {
    expect(await diffCase([dirE("d"), file("d/x")], [dirE("d", { mtime: T + 50 }), file("d/x")])).toEqual(NONE);
  });

  it("directory <-> file or symlink -> mod, listed in removed", async () => {
    const out = await diffCase(
      [dirE("d1"), file("d1/child"), file("f1"), dirE("d2")],
      [file("d1", "now a file"), dirE("f1"), file("f1/inside"), sym("d2", "elsewhere")],
    );
    expect(out.added).toEqual(["f1/inside"]);
    expect(out.changed).toEqual(["d1", "d2", "f1"]);
    expect(out.deleted).toEqual(["d1/child"]);
    expect(out.removed).toBe("d1\nd1/child\nd2\nf1\n");
    expect(out.members).toEqual(["d1", "f1", "f1/inside", "d2"]);
  });

  it("symlink target changed, mtime unchanged -> mod under both policies (DIFFERENCE: reference ignores it)", async () => {
    expect(await diffCase([sym("s", "a")], [sym("s", "b")])).toMatchObject({ changed: ["s"], removed: "s\n", members: ["s"] });
    expect(await diffCase([sym("s", "a")], [sym("s", "b")], "exact")).toMatchObject({ changed: ["s"], removed: "s\n", members: ["s"] });
  });

  it("symlink target and mtime changed -> mod", async () => {
    expect((await diffCase([sym("s", "a")], [sym("s", "b", { mtime: T + 1 })])).changed).toEqual(["s"]);
  });

  it("symlink, same target, mtime changed -> ignored with 'content'; mod with 'exact' (GNU tar restores symlink mtimes)", async () => {
    expect((await diffCase([sym("s", "a")], [sym("s", "a", { mtime: T + 1 })])).changed).toEqual([]);
    expect((await diffCase([sym("s", "a")], [sym("s", "a", { mtime: T + 1 })], "exact")).changed).toEqual(["s"]);
  });

  it("char device: mtime only -> ignored with 'content' (mod with 'exact'), minor changed -> mod; fifo mtime likewise", async () => {
    const dev = (name: string, minor: number, mtime = T): FixtureEntry => ({
      name,
      type: "character-device",
      devmajor: 1,
      devminor: minor,
      mtime,
    });
    const out = await diffCase(
      [
        dev("c1", 3),
        dev("c2", 3),
        { name: "p", type: "fifo", mtime: T },
        { name: "b", type: "block-device", devmajor: 7, devminor: 0, mtime: T },
      ],
      [
        dev("c1", 3, T + 1),
        dev("c2", 5),
        { name: "p", type: "fifo", mtime: T + 1 },
        { name: "b", type: "block-device", devmajor: 7, devminor: 0, mtime: T },
      ],
    );
    expect(out.changed).toEqual(["c2"]);
  });

  it("char device, fifo: mtime only -> mod with 'exact'", async () => {
    const dev = (name: string, minor: number, mtime = T): FixtureEntry => ({
      name,
      type: "character-device",
      devmajor: 1,
      devminor: minor,
      mtime,
    });
    const out = await diffCase(
      [dev("c1", 3), { name: "p", type: "fifo", mtime: T }],
      [dev("c1", 3, T + 1), { name: "p", type: "fifo", mtime: T + 1 }],
      "exact",
    );
    expect(out.changed).toEqual(["c1", "p"]);
  });

  it("hard link unchanged, target unchanged -> ignored", async () => {
    expect(await diffCase([file("a"), hard("b", "a")], [file("a"), hard("b", "a")])).toEqual(NONE);
  });

  it("hard link unchanged, target content changed -> both mod, target written first, under both policies (LP #1444347)", async () => {
    for (const policy of ["content", "exact"] as const) {
      const out = await diffCase([file("z"), hard("b", "z")], [file("z", "new!"), hard("b", "z")], policy);
      expect(out).toEqual({ ...NONE, changed: ["b", "z"], removed: "b\nz\n", members: ["z", "b"] });
    }
    // Same size, new mtimes: with 'content' the digest decides for z, and the link (whose
    // own entry changed only its mtime) still follows its rewritten target.
    const out = await diffCase([file("z", "AAAA"), hard("b", "z")], [file("z", "BBBB", { mtime: T + 5 }), hard("b", "z", T + 5)]);
    expect(out.changed).toEqual(["b", "z"]);
  });

  it("hard link whose target's metadata changed -> re-linked too", async () => {
    const out = await diffCase([file("a"), hard("b", "a")], [file("a", "data", { mode: 0o600 }), hard("b", "a")]);
    expect(out.changed).toEqual(["a", "b"]);
  });

  it("chains of hard links (links to links) are re-linked transitively", async () => {
    const out = await diffCase(
      [file("a"), hard("b", "a"), hard("c", "b"), file("x")],
      [file("a", "new"), hard("b", "a"), hard("c", "b"), file("x")],
    );
    expect(out.changed).toEqual(["a", "b", "c"]);
    expect(out.members).toEqual(["a", "b", "c"]);
  });

  it("hard link retargeted to a file with equal content -> mod (DIFFERENCE: the inode differs)", async () => {
    const out = await diffCase([file("x"), file("y"), hard("l", "x")], [file("x"), file("y"), hard("l", "y")]);
    expect(out).toEqual({ ...NONE, changed: ["l"], removed: "l\n", members: ["l"] });
  });

  it("hard link retargeted to a file with different content -> mod", async () => {
    expect(
      (await diffCase([file("x"), file("y", "other"), hard("l", "x")], [file("x"), file("y", "other"), hard("l", "y")])).changed,
    ).toEqual(["l"]);
  });

  it("regular file -> hard link with the same content -> mod (DIFFERENCE: type and inode change)", async () => {
    expect((await diffCase([file("a"), file("b")], [file("a"), hard("b", "a")])).changed).toEqual(["b"]);
  });

  it("swapped hard-link roles with new content -> both mod", async () => {
    const out = await diffCase([file("a", "XXXX"), hard("b", "a")], [file("b", "YYYYY"), hard("a", "b")]);
    expect(out).toEqual({ ...NONE, changed: ["a", "b"], removed: "a\nb\n", members: ["b", "a"] });
  });

  it("path only in the new image -> add; only in the old one -> del", async () => {
    const out = await diffCase([file("gone"), file("kept")], [file("kept"), file("new")]);
    expect(out).toEqual({ ...NONE, added: ["new"], deleted: ["gone"], removed: "gone\n", members: ["new"] });
  });

  it("path duplicated in the old image, single in the new one, same data -> ignored (last occurrence wins)", async () => {
    expect(await diffCase([file("a", "one"), file("a", "data"), file("a")], [file("a")])).toEqual(NONE);
  });

  it("the last occurrence is what the delta ships", async () => {
    const out = await diffCase([file("a")], [file("a", "first"), file("b"), file("a", "second")]);
    expect(out).toMatchObject({ added: ["b"], changed: ["a"], members: ["b", "a"] });
  });
});

describe("implicit parent directories (members without a directory entry)", () => {
  it("a directory entry that disappears while its children stay is not removed", async () => {
    const out = await diffCase([dirE("d"), file("d/x")], [file("d/x")]);
    expect(out).toEqual(NONE);
  });

  it("an implicit directory that gets an entry of its own is written, not removed", async () => {
    expect(await diffCase([file("d/x")], [dirE("d", { mode: 0o750 }), file("d/x")])).toEqual({ ...NONE, changed: ["d"], members: ["d"] });
  });

  it("an implicit directory that becomes a file is removed first", async () => {
    const out = await diffCase([file("d/x")], [file("d", "file now")]);
    expect(out).toMatchObject({ changed: ["d"], deleted: ["d/x"], removed: "d\nd/x\n", members: ["d"] });
  });
});

describe("removed-list safety", () => {
  it("warns about names the recovery's unquoted rm -Rf loop would mangle", async () => {
    const dir = tempDir();
    const oldTar = await writeTarWithWriter(join(dir, "old.tar"), [file("with space"), file("star*")]);
    const newTar = await writeTarWithWriter(join(dir, "new.tar"), []);
    const s = await makeDelta(oldTar, newTar, join(dir, "d.tar.xz"), { xzLevel: 0 });
    expect(s.removedLines).toBe(2);
    expect(s.warnings.map((w) => w.replace(/:.*/, ""))).toEqual([
      "removed line 'star*' has whitespace, a glob or a backslash",
      "removed line 'with space' has whitespace, a glob or a backslash",
    ]);
  });

  it("never lists absolute paths or paths with '..' (they would escape the update root)", async () => {
    const dir = tempDir();
    const oldTar = await writeTarWithWriter(join(dir, "old.tar"), [file("/etc/abs"), file("../up"), file("ok")]);
    const newTar = await writeTarWithWriter(join(dir, "new.tar"), []);
    const out = join(dir, "d.tar.xz");
    const s = await makeDelta(oldTar, newTar, out, { xzLevel: 0 });
    expect(listTarWithPython(out)[0].content).toBe("ok\n");
    expect(s.warnings).toEqual(
      expect.arrayContaining(["not listing '/etc/abs' in removed: it is absolute", "not listing '../up' in removed: it contains '..'"]),
    );
  });
});
