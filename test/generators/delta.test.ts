import { afterAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateDelta } from "../../src/generators/index.js";
import { dumpPyJson } from "../../src/format/pyjson.js";
import { cleanupAll, expectPublished, genInstance, listTar, poolListing, readJson, tarMember, tarOf, tree } from "./fixtures.js";

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
    expect(listTar(path).map((m) => m.name).sort()).toEqual(["removed", "system/a", "system/b"]);
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
