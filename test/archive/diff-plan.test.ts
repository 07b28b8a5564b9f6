/** The pure half of the diff: catalogue comparison and member order, without any IO. */
import { describe, expect, it } from "vitest";
import { Catalogue, compareCatalogues, planMemberOrder, removedContent } from "../../src/archive/diff/index.js";
import { isBinaryLike, similarityStem } from "../../src/archive/diff/plan.js";
import type { TarHeader } from "../../src/archive/tar/types.js";

function cat(entries: Partial<TarHeader>[], sha: Record<string, string> = {}): Catalogue {
  const c = new Catalogue();
  for (const e of entries) {
    const h: TarHeader = { name: "?", type: "file", mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: 1, size: 0, ...e };
    c.add(h, h.type === "file" ? (sha[h.name] ?? "0") : undefined);
  }
  c.addImplicitParents();
  return c;
}

describe("planMemberOrder", () => {
  it("keeps archive order and holds a link back until its target is written (chains too)", () => {
    const c = cat([
      { name: "l2", type: "link", linkname: "l1" },
      { name: "l1", type: "link", linkname: "t" },
      { name: "x" },
      { name: "t" },
      { name: "y" },
    ]);
    expect(planMemberOrder(c, new Set(["l2", "l1", "x", "t", "y"]))).toEqual(["x", "t", "l1", "l2", "y"]);
  });

  it("writes a link in place when its target is not part of the delta", () => {
    const c = cat([{ name: "l", type: "link", linkname: "t" }, { name: "t" }, { name: "z" }]);
    expect(planMemberOrder(c, new Set(["l", "z"]))).toEqual(["l", "z"]);
  });

  it("uses the position of a path's last occurrence", () => {
    const c = cat([{ name: "a" }, { name: "b" }, { name: "a" }]);
    expect(planMemberOrder(c, new Set(["a", "b"]))).toEqual(["b", "a"]);
  });
});

describe("grouping similar files (xz blocks compress alone)", () => {
  it("names a file by its basename without `lib`, up to the first '.' or '-'", () => {
    expect(
      ["system/usr/bin/perl", "system/usr/lib/libperl.so.5.36.0", "a/b/foo.cpython-311.pyc", "x/lib", "x/.hidden", "x/gcc-12"].map(
        similarityStem,
      ),
    ).toEqual(["perl", "perl", "foo", "lib", "", "gcc"]);
  });

  it("knows executables and shared libraries by their names", () => {
    const yes = ["system/usr/bin/perl", "system/sbin/init", "system/usr/libexec/x", "system/usr/lib/libc.so.6", "a/re.so"];
    const no = ["system/usr/lib/python3/x.pyc", "system/usr/share/so.txt", "system/usr/lib/libfoo.sox", "system/binary/x"];
    expect(yes.map(isBinaryLike)).toEqual(yes.map(() => true));
    expect(no.map(isBinaryLike)).toEqual(no.map(() => false));
  });

  it("moves a binary to its stem group's first member; directories, symlinks and other files keep their place", () => {
    const c = cat([
      { name: "bin", type: "directory" },
      { name: "bin/perl" },
      { name: "lib", type: "directory" },
      { name: "lib/x" },
      { name: "lib/s", type: "symlink", linkname: "x" },
      { name: "lib/libperl.so.5.36" },
      { name: "lib/y" },
      { name: "doc/perl.txt" },
    ]);
    const all = ["bin", "bin/perl", "lib", "lib/x", "lib/s", "lib/libperl.so.5.36", "lib/y", "doc/perl.txt"];
    expect(planMemberOrder(c, new Set(all))).toEqual([
      "bin",
      "bin/perl",
      "lib",
      "lib/libperl.so.5.36",
      "lib/x",
      "lib/s",
      "lib/y",
      "doc/perl.txt",
    ]);
    // A group of one file does not move.
    expect(planMemberOrder(c, new Set(["bin/perl", "lib/x"]))).toEqual(["bin/perl", "lib/x"]);
    // Without the directory `lib` in the delta, libperl follows perl at once.
    expect(planMemberOrder(c, new Set(["bin/perl", "lib/x", "lib/libperl.so.5.36"]))).toEqual(["bin/perl", "lib/libperl.so.5.36", "lib/x"]);
  });

  it("a hard link to a pulled file still comes after it", () => {
    const c = cat([
      { name: "bin/perl" },
      { name: "z" },
      { name: "lib/libperl.so" },
      { name: "lib/perl5", type: "link", linkname: "lib/libperl.so" },
    ]);
    expect(planMemberOrder(c, new Set(["bin/perl", "lib/perl5", "z", "lib/libperl.so"]))).toEqual([
      "bin/perl",
      "lib/libperl.so",
      "z",
      "lib/perl5",
    ]);
  });
});

describe("compareCatalogues", () => {
  it("sorts removed lines by code point, not UTF-16 unit (§6.4)", () => {
    // U+1F600 (astral) sorts after U+FF5E in code points, before it in UTF-16 units.
    const names = ["z", "\u{1F600}", "\uFF5E", "a"];
    const ch = compareCatalogues(cat(names.map((name) => ({ name }))), cat([]));
    expect(ch.removed).toEqual(["a", "z", "\uFF5E", "\u{1F600}"]);
    expect(removedContent(ch.removed).toString("utf8")).toBe("a\nz\n\uFF5E\n\u{1F600}\n");
  });

  it("removedContent is a lone newline when nothing is removed", () => {
    expect(removedContent([]).toString()).toBe("\n");
  });

  it("treats a same-size content change as a change (compares SHA-256)", () => {
    const ch = compareCatalogues(cat([{ name: "f", size: 4 }], { f: "aaa" }), cat([{ name: "f", size: 4 }], { f: "bbb" }));
    expect(ch.changed).toEqual(["f"]);
  });
});
