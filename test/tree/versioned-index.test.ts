/**
 * Content-named index copies (src/tree/versioned-index.ts): channels.json names an immutable
 * `index-<sha256/16>.json` per device, so a device's index + .asc pair never comes from two
 * commits; the conventional index.json stays for installers (client-protocol §10.1).
 */
import { readdirSync, readFileSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { RETAIN_MS, versionedIndexName } from "../../src/tree/versioned-index.js";
import { publishBasicImage, readJson, signedFile, treeFixture, verifyTree } from "./fixture.js";

type Channels = Record<string, { devices: Record<string, { index: string }>; redirect?: string }>;

const channelsOf = (pub: string) => readJson(join(pub, "channels.json")) as Channels;

describe("channels.json names a content-named copy of each index", () => {
  it("points devices, aliases and redirects at copies that hold exactly the conventional index.json", async () => {
    const fx = await treeFixture();
    const { tree, pub } = fx;
    await tree.create_channel("stable");
    await tree.create_device("stable", "mako");
    await publishBasicImage(fx, "stable", "mako");
    await tree.create_channel_alias("alias", "stable");
    await tree.create_channel_redirect("old", "stable");

    const ch = channelsOf(pub);
    const named = ch.stable.devices.mako.index;
    expect(named).toMatch(/^\/stable\/mako\/index-[0-9a-f]{16}\.json$/);
    const conventional = readFileSync(join(pub, "stable/mako/index.json"));
    // The name is the content's hash, and the bytes are the installers' index.json.
    expect(readFileSync(join(pub, named))).toEqual(conventional);
    expect(named.endsWith(versionedIndexName(conventional))).toBe(true);
    // An alias has its own directory and copy; a redirect reads the target's (server-reference §2.2).
    expect(ch.alias.devices.mako.index).toMatch(/^\/alias\/mako\/index-[0-9a-f]{16}\.json$/);
    expect(readFileSync(join(pub, ch.alias.devices.mako.index))).toEqual(readFileSync(join(pub, "alias/mako/index.json")));
    expect(ch.old.devices.mako.index).toBe(named);
    // Every .asc, the copies' included, verifies with real gpg.
    verifyTree(pub);
  });

  it("writes a new copy per change, keeps the superseded one a while, then lets cleanup remove it", async () => {
    const fx = await treeFixture();
    const { tree, pub } = fx;
    await tree.create_channel("stable");
    await tree.create_device("stable", "mako");
    await publishBasicImage(fx, "stable", "mako");
    const before = channelsOf(pub).stable.devices.mako.index;

    // The copy about to be replaced was written long ago: its retention must count from the
    // moment channels.json stops naming it, not from its creation.
    const longAgo = (Date.now() - 3 * RETAIN_MS) / 1000;
    utimesSync(join(pub, before), longAgo, longAgo);
    const dev = await tree.get_device("stable", "mako");
    await dev.set_phased_percentage(1234, 90);
    const after = channelsOf(pub).stable.devices.mako.index;
    expect(after).not.toBe(before);
    // A device holding the previous channels.json still finds the index it names, signed.
    expect((JSON.parse(readFileSync(join(pub, before), "utf8")) as IndexDoc).images[0]["phased-percentage"]).toBe(50);
    expect((JSON.parse(readFileSync(join(pub, after), "utf8")) as IndexDoc).images[0]["phased-percentage"]).toBe(90);
    expect(await tree.list_orphaned_files()).toEqual([]);
    verifyTree(pub);
    // ... so it is kept (not an orphan, above) and its clock starts now.
    expect(Date.now() - statSync(join(pub, before)).mtimeMs).toBeLessThan(60_000);

    // RETAIN_MS after channels.json stopped naming them, copies are orphans like any other
    // file (their mtime says when they were last named).
    const dir = join(pub, "stable/mako");
    const copies = readdirSync(dir)
      .filter((n) => /^index-[0-9a-f]{16}\.json$/.test(n))
      .map((n) => join(dir, n))
      .sort();
    expect(copies.length).toBeGreaterThanOrEqual(4); // empty device, the image, 50 %, 90 %
    const old = (Date.now() - RETAIN_MS - 60_000) / 1000;
    const unnamed = copies.filter((c) => c !== join(pub, after));
    for (const c of unnamed) utimesSync(c, old, old);
    const orphans = await tree.list_orphaned_files();
    expect(orphans).toEqual(unnamed.flatMap((c) => [c, `${c}.asc`]).sort());
    expect(orphans).toContain(join(pub, before));
    await tree.cleanup_tree();
    expect(await tree.list_orphaned_files()).toEqual([]);
    expect((JSON.parse(readFileSync(join(pub, after), "utf8")) as IndexDoc).images[0]["phased-percentage"]).toBe(90);
  });

  it("heals a commit killed between index.json and channels.json on the next cleanup", async () => {
    const fx = await treeFixture();
    const { tree, pub } = fx;
    await tree.create_channel("stable");
    await tree.create_device("stable", "mako");
    await publishBasicImage(fx, "stable", "mako");
    const named = channelsOf(pub).stable.devices.mako.index;
    // What a SIGKILL after the index renames leaves: a new index.json (and its copy), the old
    // channels.json naming the previous copy.
    const conventional = join(pub, "stable/mako/index.json");
    const doc = JSON.parse(readFileSync(conventional, "utf8")) as IndexDoc;
    doc.images[0].description = "killed mid-commit";
    await signedFile(fx.signer, conventional, JSON.stringify(doc, null, 4) + "\n");
    const copy = join(pub, "stable/mako", versionedIndexName(readFileSync(conventional)));
    await signedFile(fx.signer, copy, readFileSync(conventional));
    expect(channelsOf(pub).stable.devices.mako.index).toBe(named);

    await tree.cleanup_tree();
    // Rolled forward: devices now read what installers read, and nothing is left over.
    expect(join(pub, channelsOf(pub).stable.devices.mako.index)).toBe(copy);
    expect(await tree.list_orphaned_files()).toEqual([]);
    verifyTree(pub);
    // A second cleanup has nothing to do: channels.json is not rewritten.
    const before = readFileSync(join(pub, "channels.json.asc"), "utf8");
    await tree.cleanup_tree();
    expect(readFileSync(join(pub, "channels.json.asc"), "utf8")).toBe(before);
  });

  it("keeps the reference's layout with versioned_index = false", async () => {
    const fx = await treeFixture({ extraConfig: "versioned_index = false\n" });
    await fx.tree.create_channel("stable");
    await fx.tree.create_device("stable", "mako");
    expect(channelsOf(fx.pub).stable.devices.mako.index).toBe("/stable/mako/index.json");
  });
});
