/**
 * Ports of test_tree's alias, redirect, per-device redirect, redirect+alias, device-redirect
 * clean-up and rename cases (server-reference §10.6), plus what our fixes add: §13 #21
 * (rename with a per-device redirect inside) and alias copies rebuilt for a new target.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readVersionIni } from "../../src/tree/index.js";
import { fingerprint, publishBasicImage, readJson, rejection, treeFixture, verifyTree, REFERENCE_LAYOUT } from "./fixture.js";

describe("aliases (test_alias)", () => {
  it("refuses bad aliases, syncs devices, images, directories and phasing, and re-targets", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub } = fx;
    await tree.create_channel("parent");
    await tree.create_channel_alias("alias", "parent");
    await tree.create_channel_redirect("redirect", "alias");

    const fails = async (p: Promise<unknown>, kind: string, message: string) => {
      const err = await rejection(p);
      expect([err.kind, err.message]).toEqual([kind, message]);
    };
    await fails(tree.create_channel_alias("alias", "parent"), "KeyError", "Channel already exists: alias");
    await fails(tree.create_channel_alias("alias1", "parent1"), "KeyError", "Couldn't find target channel: parent1");
    await fails(tree.change_channel_alias("alias1", "parent"), "KeyError", "Couldn't find channel: alias1");
    await fails(tree.change_channel_alias("alias", "parent1"), "KeyError", "Couldn't find target channel: parent1");
    await fails(tree.change_channel_alias("parent", "parent"), "KeyError", "Channel isn't an alias: parent");
    await fails(tree.change_channel_alias("redirect", "parent"), "KeyError", "Channel is a redirect: redirect");
    await fails(tree.sync_aliases("missing"), "KeyError", "Couldn't find channel: missing");
    await fails(tree.sync_alias("missing"), "KeyError", "Couldn't find channel: missing");
    await fails(tree.sync_alias("parent"), "TypeError", "Not a channel alias: parent");

    await tree.remove_channel("parent");
    await fails(tree.sync_alias("alias"), "KeyError", "Couldn't find target channel: parent");
    await tree.create_channel("parent");

    for (const d of ["device", "device2", "device3"]) await tree.create_device("parent", d);
    await tree.create_device("alias", "device1");
    await publishBasicImage(fx, "parent", "device");

    // A fake image only the alias has.
    const aliasDev = await tree.get_device("alias", "device");
    await aliasDev.create_image("full", 1235, "abc", ["parent/device/full", "parent/device/version-1234.tar.xz"]);

    const device3 = await tree.get_device("alias", "device3");
    rmSync(device3.path, { recursive: true });
    await tree.sync_aliases("parent");

    const channels = await tree.list_channels();
    expect(Object.keys(channels.alias.devices).sort()).toEqual(["device", "device2", "device3"]);
    expect(existsSync(join(pub, "alias/device1"))).toBe(false);
    expect(existsSync(join(pub, "alias/device3/index.json"))).toBe(true);
    expect(await aliasDev.get_phased_percentage(1234)).toBe(50);
    const images = await aliasDev.list_images();
    expect(images.map((i) => i.version)).toEqual([1234]);
    // The copy names the parent's pool-style file and its own version tarball (order kept).
    expect(images[0].files.map((f) => [f.order, f.path])).toEqual([
      [0, "/parent/device/full"],
      [1, "/alias/device/version-1234.tar.xz"],
    ]);
    const ini = await readVersionIni(join(pub, "alias/device/version-1234.tar.xz"));
    expect(ini).toMatchObject({
      channel: "alias",
      device: "device",
      build_number: "1234",
      channel_target: "parent",
      version_detail: "test",
    });
    // No sidecar for alias copies (§1.5).
    expect(existsSync(join(pub, "alias/device/version-1234.json"))).toBe(false);
    // The redirect to the alias follows its device list.
    expect(Object.keys(channels.redirect.devices).sort()).toEqual(["device", "device2", "device3"]);
    expect(channels.redirect).toMatchObject({ redirect: "alias", hidden: true, alias: "parent" });

    // A second sync changes nothing on disk.
    const before = fingerprint(pub);
    await tree.sync_aliases("parent");
    expect(fingerprint(pub)).toEqual(before);

    await tree.create_channel("new_parent");
    await tree.change_channel_alias("alias", "new_parent");
    expect((await tree.list_channels()).alias).toEqual({ alias: "new_parent", devices: {} });
    verifyTree(pub);

    await tree.remove_channel("alias");
    await tree.remove_channel("new_parent");
    await tree.remove_channel("parent");
    verifyTree(pub);
  });

  it("rebuilds the copies (and their channel_target) when the alias changes target", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub } = fx;
    for (const c of ["one", "two"]) {
      await tree.create_channel(c);
      await tree.create_device(c, "device");
      await publishBasicImage(fx, c, "device");
    }
    await tree.create_channel_alias("stable", "one");
    const one = readJson(join(pub, "stable/device/index.json")) as { images: Array<{ files: Array<{ path: string }> }> };
    expect(one.images[0].files[0].path).toBe("/one/device/full");
    expect((await readVersionIni(join(pub, "stable/device/version-1234.tar.xz")))!.channel_target).toBe("one");

    await tree.change_channel_alias("stable", "two");
    const dev = await tree.get_device("stable", "device");
    const [img] = await dev.list_images();
    expect(img.files.map((f) => f.path)).toEqual(["/two/device/full", "/stable/device/version-1234.tar.xz"]);
    // Same version, but the tarball was remade for the new target, and the index knows its checksum.
    expect((await readVersionIni(join(pub, "stable/device/version-1234.tar.xz")))!.channel_target).toBe("two");
    const { createHash } = await import("node:crypto");
    const sum = createHash("sha256")
      .update(readFileSync(join(pub, "stable/device/version-1234.tar.xz")))
      .digest("hex");
    expect(img.files[1].checksum).toBe(sum);
    verifyTree(pub);
  });
});

describe("redirects (test_redirect, test_redirect_alias)", () => {
  it("makes a hidden copy without a directory whose devices read the parent's images", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub } = fx;
    await tree.create_channel("parent");
    await tree.create_channel_redirect("redirect", "parent");
    expect((await rejection(tree.create_channel_redirect("redirect", "parent"))).message).toBe("Channel already exists: redirect");
    expect((await rejection(tree.create_channel_redirect("redirect1", "parent1"))).message).toBe("Couldn't find target channel: parent1");
    expect((await rejection(tree.sync_redirects("parent1"))).kind).toBe("KeyError");

    await tree.create_device("parent", "device");
    await publishBasicImage(fx, "parent", "device");
    await tree.sync_redirects("parent");
    const device = await tree.get_device("parent", "device");
    const target = await tree.get_device("redirect", "device");
    expect(existsSync(join(pub, "redirect"))).toBe(false);
    expect(existsSync(join(pub, "parent/device"))).toBe(true);
    expect(await target.list_images()).toEqual(await device.list_images());
    expect((await tree.list_channels()).redirect).toEqual({
      devices: { device: { index: "/parent/device/index.json" } },
      hidden: true,
      redirect: "parent",
    });
    verifyTree(pub);
  });

  it("never syncs a channel that is both an alias and a redirect (LP #1455119)", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub } = fx;
    await tree.create_channel("parent");
    await tree.create_channel("overthere");
    await tree.create_channel_redirect("redirect", "overthere");
    // Hand-edit: overthere is now both an alias of "redirect" and a redirect.
    const doc = readJson(tree.indexpath) as Record<string, Record<string, unknown>>;
    doc.overthere.alias = "redirect";
    doc.overthere.redirect = "overthere";
    writeFileSync(tree.indexpath, JSON.stringify(doc));
    await tree.create_device("redirect", "device"); // runs sync_aliases("redirect")
    expect((await tree.list_channels()).overthere.devices).toEqual({});
    expect(existsSync(join(pub, "overthere"))).toBe(false);
    await tree.sync_aliases("redirect");
    expect((await tree.list_channels()).overthere.devices).toEqual({});
    verifyTree(pub);
  });
});

describe("per-device redirects (test_per_device_redirect, test_cleanup_device_redirects)", () => {
  it("points one device at another channel's index and owns no files", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub } = fx;
    await tree.create_channel("parent");
    await tree.create_channel("redirect");
    await tree.create_device("parent", "device");
    await tree.create_device("parent", "other");
    await tree.create_device("redirect", "other");

    const msg = async (p: Promise<unknown>) => {
      const e = await rejection(p);
      expect(e.kind).toBe("KeyError");
      return e.message;
    };
    expect(await msg(tree.create_per_device_channel_redirect("device", "redirect1", "parent"))).toBe("Couldn't find channel: redirect1");
    expect(await msg(tree.create_per_device_channel_redirect("other", "redirect", "parent"))).toBe("Device already exists: other");
    expect(await msg(tree.create_per_device_channel_redirect("device", "redirect", "parent1"))).toBe(
      "Couldn't find target channel: parent1",
    );
    expect(await msg(tree.create_per_device_channel_redirect("device2", "redirect", "parent"))).toBe(
      "Couldn't find device on target channel: parent, device2",
    );

    await tree.create_per_device_channel_redirect("device", "redirect", "parent");
    await publishBasicImage(fx, "parent", "device");
    const device = await tree.get_device("parent", "device");
    const target = await tree.get_device("redirect", "device");
    expect(existsSync(join(pub, "redirect"))).toBe(true);
    expect(existsSync(join(pub, "redirect/device"))).toBe(false);
    expect(await target.list_images()).toEqual(await device.list_images());
    const channels = await tree.list_channels();
    expect(channels.redirect.devices.other).toEqual({ index: "/redirect/other/index.json" });
    expect(channels.redirect.devices.device).toEqual({ index: "/parent/device/index.json", redirect: "parent" });

    // Removing the redirect entry leaves the parent's files alone.
    await tree.remove_device("redirect", "device");
    expect(existsSync(join(pub, "parent/device/index.json"))).toBe(true);
    expect((await device.list_images()).length).toBe(1);
    verifyTree(pub);
  });

  it("drops per-device redirects when their target device or channel goes, and only then", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree } = fx;
    for (const c of ["parent", "redirect", "unrelated"]) await tree.create_channel(c);
    for (const d of ["device", "other"]) await tree.create_device("parent", d);
    await tree.create_device("unrelated", "device");
    await tree.create_per_device_channel_redirect("device", "redirect", "parent");
    await tree.create_per_device_channel_redirect("other", "redirect", "parent");

    await tree.remove_device("unrelated", "device");
    await tree.remove_channel("unrelated");
    expect(Object.keys((await tree.list_channels()).redirect.devices).sort()).toEqual(["device", "other"]);
    await tree.remove_device("parent", "other");
    expect(Object.keys((await tree.list_channels()).redirect.devices)).toEqual(["device"]);
    await tree.remove_channel("parent");
    expect((await tree.list_channels()).redirect.devices).toEqual({});
    await tree.cleanup_device_redirects("nothing");
    verifyTree(fx.pub);
  });
});

describe("rename (test_rename, test_rename_with_redirects)", () => {
  it("refuses bad renames, moves the directory and rewrites the device index", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub } = fx;
    await tree.create_channel("old");
    await tree.create_channel("existing");
    expect((await rejection(tree.rename_channel("old1", "test/new"))).message).toBe("Couldn't find channel: old1");
    expect((await rejection(tree.rename_channel("old", "existing"))).message).toBe("Channel already exists: existing");
    await tree.create_device("old", "device");
    await publishBasicImage(fx, "old", "device");

    mkdirSync(join(pub, "test/new"), { recursive: true });
    const err = await rejection(tree.rename_channel("old", "test/new"));
    expect([err.kind, err.message]).toEqual(["Exception", `Channel path already exists: ${join(pub, "test/new")}`]);
    rmdirSync(join(pub, "test/new"));
    rmdirSync(join(pub, "test"));

    expect(await tree.rename_channel("old", "test/new")).toBe(true);
    expect((await tree.list_channels())["test/new"]).toEqual({ devices: { device: { index: "/test/new/device/index.json" } } });
    expect(existsSync(join(pub, "old"))).toBe(false);
    const [img] = await (await tree.get_device("test/new", "device")).list_images();
    expect(img.files.map((f) => [f.path, f.signature])).toEqual([
      ["/test/new/device/full", "/test/new/device/full.asc"],
      ["/test/new/device/version-1234.tar.xz", "/test/new/device/version-1234.tar.xz.asc"],
    ]);
    expect(await tree.list_missing_files()).toEqual([]);
    expect(await tree.list_orphaned_files()).toEqual([]);
    verifyTree(pub);
  });

  it("moves per-device redirects to the new name, and skips the ones inside (§13 #21)", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub } = fx;
    for (const c of ["parent", "redirect", "other"]) await tree.create_channel(c);
    await tree.create_device("parent", "device");
    await tree.create_device("other", "device2");
    await tree.create_per_device_channel_redirect("device", "redirect", "parent");
    await tree.create_per_device_channel_redirect("device2", "parent", "other");
    await tree.create_channel_redirect("follower", "parent");

    await tree.rename_channel("parent", "renamed");
    const channels = await tree.list_channels();
    expect(channels.parent).toBeUndefined();
    expect(channels.redirect.devices.device).toEqual({ index: "/renamed/device/index.json", redirect: "renamed" });
    // The redirect inside the renamed channel still names the other channel's index.
    expect(channels.renamed.devices.device2).toEqual({ index: "/other/device2/index.json", redirect: "other" });
    expect(channels.renamed.devices.device).toEqual({ index: "/renamed/device/index.json" });
    // A channel redirect to the old name now copies the new one.
    expect(channels.follower).toMatchObject({ redirect: "renamed", devices: { device: { index: "/renamed/device/index.json" } } });
    expect(await tree.list_missing_files()).toEqual([]);
    verifyTree(pub);
  });
});
