/**
 * The push plan (src/mirror/plan.ts): phases in dependency order, only what changed against
 * the manifest of the last successful push, removals deferred past their grace.
 */
import { describe, expect, it } from "vitest";
import { isMutableDocument, phaseOf, planPush, type LocalFile, type ManifestEntry } from "../../src/mirror/plan.js";

const f = (path: string, size = 10, mtimeMs = 1000): LocalFile => ({ path, size, mtimeMs });
const m = (path: string, size = 10, mtimeMs = 1000, removableAfter: number | null = null): ManifestEntry => ({
  path,
  size,
  mtimeMs,
  removableAfter,
});

const TREE = [
  "channels.json.asc",
  "channels.json",
  "gpg/image-signing.tar.xz.asc",
  "gpg/image-signing.tar.xz",
  "devel/mako/index.json.asc",
  "devel/mako/index.json",
  "devel/mako/index-0123456789abcdef.json",
  "devel/mako/index-0123456789abcdef.json.asc",
  "devel/mako/version-3.tar.xz",
  "devel/mako/version-3.json.asc",
  "pool/ubports-aa.tar.xz",
  "pool/ubports-aa.tar.xz.asc",
  "pool/ubports-bb.delta-ubports-aa.tar.xz",
  "pool/index.json", // a pool file that happens to be named like a document is still a file
];

describe("planPush", () => {
  it("puts every file of a new mirror into its phase, in dependency order", () => {
    const plan = planPush(
      TREE.map((p) => f(p)),
      [],
      0,
    );
    expect(plan.phases).toEqual([
      {
        name: "files",
        files: [
          "devel/mako/version-3.json.asc",
          "devel/mako/version-3.tar.xz",
          "pool/index.json",
          "pool/ubports-aa.tar.xz",
          "pool/ubports-aa.tar.xz.asc",
          "pool/ubports-bb.delta-ubports-aa.tar.xz",
        ],
      },
      { name: "index-copies", files: ["devel/mako/index-0123456789abcdef.json", "devel/mako/index-0123456789abcdef.json.asc"] },
      { name: "indexes", files: ["devel/mako/index.json", "devel/mako/index.json.asc"] },
      { name: "keyrings", files: ["gpg/image-signing.tar.xz", "gpg/image-signing.tar.xz.asc"] },
      { name: "channels-pair", files: [] },
      { name: "channels-switch", files: [] },
      { name: "channels", files: ["channels.json", "channels.json.asc"] },
    ]);
    expect(plan.newlyGone).toEqual([]);
  });

  it("sends only files whose size or mtime differ from the manifest, or that are new", () => {
    const manifest = TREE.map((p) => m(p));
    const local = TREE.map((p) => f(p));
    local[1] = f("channels.json", 10, 2000); // rewritten, same size
    local[5] = f("devel/mako/index.json", 11, 1000); // other size
    local.push(f("pool/ubports-cc.tar.xz"));
    const plan = planPush(local, manifest, 0);
    expect(plan.phases.map((p) => [p.name, p.files])).toEqual([
      ["files", ["pool/ubports-cc.tar.xz"]],
      ["index-copies", []],
      ["indexes", ["devel/mako/index.json"]],
      ["keyrings", []],
      ["channels-pair", []],
      ["channels-switch", []],
      ["channels", ["channels.json"]],
    ]);
  });

  it("defers removals: first noticed, then pending during the grace, then due", () => {
    const local = [f("channels.json")];
    const manifest = [
      m("channels.json"),
      m("pool/old.tar.xz"),
      m("pool/older.tar.xz", 10, 1000, 5000),
      m("pool/oldest.tar.xz", 10, 1000, 3000),
    ];
    const plan = planPush(local, manifest, 4000);
    expect(plan.newlyGone).toEqual(["pool/old.tar.xz"]);
    expect(plan.pendingRemovals).toEqual([{ path: "pool/older.tar.xz", removableAfter: 5000 }]);
    expect(plan.dueRemovals).toEqual(["pool/oldest.tar.xz"]);
    expect(plan.phases.every((p) => p.files.length === 0)).toBe(true);
  });

  it("a file that came back during its grace is not removed; unchanged, it is not resent either", () => {
    const plan = planPush(
      [f("pool/back.tar.xz"), f("pool/changed.tar.xz", 20)],
      [m("pool/back.tar.xz", 10, 1000, 9000), m("pool/changed.tar.xz", 10, 1000, 9000)],
      10_000,
    );
    expect(plan.dueRemovals).toEqual([]);
    expect(plan.returned).toEqual(["pool/back.tar.xz"]);
    expect(plan.phases[0].files).toEqual(["pool/changed.tar.xz"]);
  });
});

describe("phaseOf / isMutableDocument", () => {
  it("classifies the tree's names", () => {
    expect(phaseOf("channels.json")).toBe("channels");
    expect(phaseOf(".si/channels/0123456789abcdef/channels.json.asc")).toBe("channels-pair");
    expect(phaseOf(".si/channels/current")).toBe("channels-switch");
    expect(phaseOf("gpg/blacklist.tar.xz")).toBe("keyrings");
    expect(phaseOf("a/b/c/index.json.asc")).toBe("indexes");
    expect(phaseOf("a/b/index-ffffffffffffffff.json")).toBe("index-copies");
    expect(phaseOf("a/b/index-fff.json")).toBe("files");
    expect(phaseOf("a/b/device.tar.xz")).toBe("files");
  });

  it("purges only names that keep their URL across commits", () => {
    const docs = TREE.filter(isMutableDocument).sort();
    expect(docs).toEqual([
      "channels.json",
      "channels.json.asc",
      "devel/mako/index.json",
      "devel/mako/index.json.asc",
      "gpg/image-signing.tar.xz",
      "gpg/image-signing.tar.xz.asc",
    ]);
  });
});
