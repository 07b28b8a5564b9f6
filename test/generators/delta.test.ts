import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scanImage } from "../../src/archive/diff/index.js";
import { catalogueSidecarPath, readCatalogueFile, writeCatalogueFile } from "../../src/archive/diff/catalogue-file.js";
import { generateDelta } from "../../src/generators/index.js";
import { dumpPyJson } from "../../src/format/pyjson.js";
import { sidecarPath } from "../../src/model/naming.js";
import { applyCheck } from "../helpers/apply-delta.js";
import { writeTarWithWriter, xzFile, type FixtureEntry } from "../helpers/tar-fixtures.js";
import {
  cleanupAll,
  expectPublished,
  genInstance,
  listTar,
  poolListing,
  readJson,
  sha256,
  tarMember,
  tarOf,
  tree,
  type GenInstance,
} from "./fixtures.js";

afterAll(cleanupAll);

describe("generate_delta (test_generate_delta)", () => {
  it("returns the target for version, keyring and boot pairs", async () => {
    const g = await genInstance();
    expect(await generateDelta(g.ctx, "/a/version-1.tar.xz", "/b/version-2.tar.xz")).toBe("/b/version-2.tar.xz");
    expect(await generateDelta(g.ctx, "/a/keyring-1.tar.xz", "/b/keyring-1.tar.xz")).toBe("/b/keyring-1.tar.xz");
    expect(await generateDelta(g.ctx, "/a/boot-1.tar.xz", "/b/boot-2.tar.xz")).toBe("/b/boot-2.tar.xz");
  });

  it("writes pool/<T>.delta-<S>.tar.xz for two empty tarballs, signed with a sidecar, then serves it from the pool", async () => {
    const g = await genInstance();
    const dir = join(g.config.base_path, "in");
    mkdirSync(dir);
    const empty = tarOf(tree({}), "xz", []);
    writeFileSync(join(dir, "source.tar.xz"), empty);
    writeFileSync(join(dir, "destination.tar.xz"), empty);
    const path = await generateDelta(g.ctx, join(dir, "source.tar.xz"), join(dir, "destination.tar.xz"));
    expect(path).toBe(join(realpathSync(g.config.publish_path), "pool/destination.delta-source.tar.xz"));
    expectPublished(g, path);
    expect(listTar(path).map((m) => m.name)).toEqual(["removed"]);
    expect(tarMember(path, "removed").toString()).toBe("\n");
    expect(readJson(join(g.pool, "destination.delta-source.json"))).toEqual({ generator: "delta", source: {}, target: {} });

    const mtime = statSync(path).mtimeMs;
    expect(await generateDelta(g.ctx, join(dir, "source.tar.xz"), join(dir, "destination.tar.xz"))).toBe(path);
    expect(statSync(path).mtimeMs).toBe(mtime);
  });

  it("diffs real images and embeds both sidecars", async () => {
    const g = await genInstance();
    const dir = join(g.config.base_path, "in");
    mkdirSync(dir);
    writeFileSync(join(dir, "ubports-old.tar.xz"), tarOf(tree({ "system/a": "1", "system/gone": "x", "system/same": "s" }), "xz"));
    writeFileSync(join(dir, "ubports-new.tar.xz"), tarOf(tree({ "system/a": "2", "system/b": "new", "system/same": "s" }), "xz"));
    writeFileSync(join(dir, "ubports-old.json"), dumpPyJson({ generator: "http", version_detail: "ubports=1" }));
    writeFileSync(join(dir, "ubports-new.json"), dumpPyJson({ generator: "http", version_detail: "ubports=2" }));
    const path = await generateDelta(g.ctx, join(dir, "ubports-old.tar.xz"), join(dir, "ubports-new.tar.xz"));
    expect(path.endsWith("pool/ubports-new.delta-ubports-old.tar.xz")).toBe(true);
    expectPublished(g, path);
    expect(tarMember(path, "removed").toString()).toBe("system/a\nsystem/gone\n");
    expect(
      listTar(path)
        .map((m) => m.name)
        .sort(),
    ).toEqual(["removed", "system/a", "system/b"]);
    expect(tarMember(path, "system/b").toString()).toBe("new");
    expect(readJson(join(g.pool, "ubports-new.delta-ubports-old.json"))).toEqual({
      generator: "delta",
      source: { generator: "http", version_detail: "ubports=1" },
      target: { generator: "http", version_detail: "ubports=2" },
    });
    expect(g.ctx.checksums.get(path)?.size).toBe(statSync(path).size);
  });

  it("fails naming the delta when an input is not an image, leaving nothing in the pool", async () => {
    const g = await genInstance();
    const dir = join(g.config.base_path, "in");
    mkdirSync(dir);
    writeFileSync(join(dir, "a-1.tar.xz"), "not xz");
    copyFileSync(join(dir, "a-1.tar.xz"), join(dir, "a-2.tar.xz"));
    const err = await generateDelta(g.ctx, join(dir, "a-1.tar.xz"), join(dir, "a-2.tar.xz")).catch((e: Error) => e);
    expect(String(err)).toContain("Cannot generate delta a-2.delta-a-1.tar.xz:");
    expect(poolListing(g)).toEqual([]);
  });
});

const T = 1_600_000_000;
const f = (name: string, content: string | Buffer, mtime = T): FixtureEntry => ({ name, content, mtime });

/** Two images (xz) with every kind of change the mtime policy cares about. */
async function pair(g: GenInstance, tag = "img"): Promise<[string, string]> {
  const dir = join(g.config.base_path, "in");
  mkdirSync(dir, { recursive: true });
  const oldE: FixtureEntry[] = [
    { name: "system", type: "directory", mode: 0o755, mtime: T },
    f("system/touched", "same bytes"),
    f("system/edited", "AAAA"),
    f("system/gone", "bye"),
    { name: "system/link", type: "symlink", linkname: "touched", mtime: T },
    f("system/hl-target", "v1"),
    { name: "system/hl", type: "link", linkname: "system/hl-target", mtime: T },
  ];
  const newE: FixtureEntry[] = [
    { name: "system", type: "directory", mode: 0o750, mtime: T },
    f("system/touched", "same bytes", T + 100),
    f("system/edited", "BBBB"),
    { name: "system/link", type: "symlink", linkname: "edited", mtime: T },
    f("system/hl-target", "v2"),
    { name: "system/hl", type: "link", linkname: "system/hl-target", mtime: T },
    f("system/added", "new"),
  ];
  const oldTar = xzFile(await writeTarWithWriter(join(dir, `${tag}-old.tar`), oldE));
  const newTar = xzFile(await writeTarWithWriter(join(dir, `${tag}-new.tar`), newE));
  return [oldTar, newTar];
}

const dropDelta = (path: string) => {
  for (const p of [path, `${path}.asc`, sidecarPath(path), `${sidecarPath(path)}.asc`]) rmSync(p, { force: true });
};
const plain = (path: string) => execFileSync("xz", ["-dc", path], { maxBuffer: 1 << 28 });

describe("generate_delta: mtime policy, stored catalogues, xz blocks (issue 19)", () => {
  it("'content' (default) leaves the mtime-only change out; 'exact' ships it under its own pool name", async () => {
    const g = await genInstance();
    const [oldTar, newTar] = await pair(g);
    const content = await generateDelta(g.ctx, oldTar, newTar);
    const exact = await generateDelta(g.ctx, oldTar, newTar, { mtime: "exact" });
    expect(content.endsWith("pool/img-new.delta-img-old.tar.xz")).toBe(true);
    expect(exact.endsWith("pool/img-new.delta-img-old.exact.tar.xz")).toBe(true);
    expectPublished(g, exact);
    const names = (p: string) => listTar(p).map((m) => m.name);
    expect(names(content)).toEqual(["removed", "system", "system/edited", "system/link", "system/hl-target", "system/hl", "system/added"]);
    expect(names(exact)).toEqual([
      "removed",
      "system",
      "system/touched",
      "system/edited",
      "system/link",
      "system/hl-target",
      "system/hl",
      "system/added",
    ]);
    expect(tarMember(content, "removed").toString()).toBe("system/edited\nsystem/gone\nsystem/hl\nsystem/hl-target\nsystem/link\n");
    expect(tarMember(exact, "removed").toString()).toBe(
      "system/edited\nsystem/gone\nsystem/hl\nsystem/hl-target\nsystem/link\nsystem/touched\n",
    );
    expect(applyCheck(oldTar, newTar, content, { mtime: "content" })).toEqual([]);
    expect(applyCheck(oldTar, newTar, exact, { mtime: "exact" })).toEqual([]);
    // The device keeps the old mtime of system/touched: exactly what "exact" exists for.
    expect(applyCheck(oldTar, newTar, content, { mtime: "exact" })).toEqual([expect.stringMatching(/^differs: system\/touched: /)]);
    // The config's global policy is the default.
    g.ctx.config.delta_mtime = "exact";
    expect(await generateDelta(g.ctx, oldTar, newTar)).toBe(exact);
  });

  it("records both catalogues when it had to read the images; a second delta from them is identical, the old image never read", async () => {
    const g = await genInstance();
    g.ctx.clock = () => new Date(1_700_000_000_000); // the `removed` member's mtime
    for (const mtime of ["content", "exact"] as const) {
      const [oldTar, newTar] = await pair(g, mtime);
      for (const p of [oldTar, newTar]) rmSync(catalogueSidecarPath(p), { force: true });
      const first = await generateDelta(g.ctx, oldTar, newTar, { mtime });
      const bytes = readFileSync(first);
      // Recorded for the bytes they describe.
      const [oldCat, newCat] = await Promise.all([
        readCatalogueFile(oldTar, sha256(readFileSync(oldTar))),
        readCatalogueFile(newTar, sha256(readFileSync(newTar))),
      ]);
      expect([...oldCat!.all()]).toEqual([...(await scanImage(oldTar)).all()]);
      expect([...newCat!.all()]).toEqual([...(await scanImage(newTar)).all()]);

      dropDelta(first);
      g.logs.length = 0;
      // The old image is unreadable now: only its catalogue can make this delta.
      const saved = readFileSync(oldTar);
      writeFileSync(oldTar, "");
      const shaKnown = sha256(saved);
      g.ctx.checksums.set(oldTar, { sha256: shaKnown, size: saved.length });
      try {
        expect(await generateDelta(g.ctx, oldTar, newTar, { mtime })).toBe(first);
      } finally {
        writeFileSync(oldTar, saved);
      }
      expect(
        g.logs.some((l) => l.includes("planned from both images' stored catalogues")),
        g.logs.join("\n"),
      ).toBe(true);
      expect(readFileSync(first).equals(bytes)).toBe(true);

      // Only the old catalogue: the one-pass delta reads the new image alone; same bytes again.
      dropDelta(first);
      rmSync(catalogueSidecarPath(newTar));
      writeFileSync(oldTar, "");
      try {
        expect(await generateDelta(g.ctx, oldTar, newTar, { mtime })).toBe(first);
      } finally {
        writeFileSync(oldTar, saved);
      }
      expect(readFileSync(first).equals(bytes)).toBe(true);
      expect(existsSync(catalogueSidecarPath(newTar))).toBe(true); // recorded again
      expect(applyCheck(oldTar, newTar, first, { mtime })).toEqual([]);
    }
  });

  it("ignores a catalogue made for other bytes, reads the image instead and rewrites the catalogue", async () => {
    const g = await genInstance();
    const [oldTar, newTar] = await pair(g);
    const other = f("system/edited", "BBBB"); // a catalogue claiming system/edited was already "BBBB"
    const lie = await scanImage(xzFile(await writeTarWithWriter(join(g.config.base_path, "lie.tar"), [other])));
    const sha = sha256(readFileSync(oldTar));
    await writeCatalogueFile(oldTar, lie, "0".repeat(64));
    const path = await generateDelta(g.ctx, oldTar, newTar);
    expect(listTar(path).map((m) => m.name)).toContain("system/edited");
    expect(applyCheck(oldTar, newTar, path)).toEqual([]);
    expect([...(await readCatalogueFile(oldTar, sha))!.all()]).toEqual([...(await scanImage(oldTar)).all()]);
  });

  it("a stored catalogue of the new image that does not match it: read the image instead, warn, record the right one", async () => {
    const g = await genInstance();
    const [oldTar, newTar] = await pair(g);
    const other = xzFile(
      await writeTarWithWriter(join(g.config.base_path, "other.tar"), [f("system/x", "x"), f("system/added", "elsewhere")]),
    );
    await writeCatalogueFile(oldTar, await scanImage(oldTar), sha256(readFileSync(oldTar)));
    await writeCatalogueFile(newTar, await scanImage(other), sha256(readFileSync(newTar)));
    const path = await generateDelta(g.ctx, oldTar, newTar);
    expect(
      g.logs.some((l) => l.startsWith("W: ") && l.includes("did not match")),
      g.logs.join("\n"),
    ).toBe(true);
    expect(applyCheck(oldTar, newTar, path)).toEqual([]);
    expect([...(await readCatalogueFile(newTar, sha256(readFileSync(newTar))))!.all()]).toEqual([...(await scanImage(newTar)).all()]);
  });

  it("delta_xz_block_mib = 8, delta_xz_dict_mib = 8: blocks of 8 MiB with an 8 MiB dictionary", async () => {
    const g = await genInstance();
    g.ctx.config.delta_xz_block_mib = 8;
    g.ctx.config.delta_xz_dict_mib = 8; // default 4
    g.ctx.config.xz_level = 6; // preset dictionary 8 MiB: the block size sets it
    const dir = join(g.config.base_path, "in");
    mkdirSync(dir, { recursive: true });
    const big = Buffer.alloc(19 << 20);
    for (let i = 0; i < big.length; i += 4096) big.write(`block ${i} `, i); // compresses fast
    const oldTar = xzFile(await writeTarWithWriter(join(dir, "blk-old.tar"), [f("system/x", "x")]));
    const newTar = xzFile(await writeTarWithWriter(join(dir, "blk-new.tar"), [f("system/x", "x"), f("system/big", big)]));
    const path = await generateDelta(g.ctx, oldTar, newTar);
    const robot = execFileSync("xz", ["--robot", "-lvv", path], { encoding: "utf8" }).split("\n");
    const blocks = robot.filter((l) => l.startsWith("block\t")).map((l) => l.split("\t"));
    // block, stream, block# in stream, block# in file, comp. offset, uncomp. offset, comp. size, uncomp. size, ...
    const sizes = blocks.map((b) => Number(b[7]));
    expect(sizes.slice(1, -1)).toEqual([8 << 20, 8 << 20]); // removed first, then full blocks
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(plain(path).length);
    expect(blocks.every((b) => b.some((c) => c.includes("dict=8MiB")))).toBe(true);
  });
});
