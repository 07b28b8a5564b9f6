/** The pure half of the diff: catalogue comparison and member order, without any IO. */
import { describe, expect, it } from "vitest";
import { Catalogue, compareCatalogues, planMemberOrder, removedContent } from "../../src/archive/diff/index.js";
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
