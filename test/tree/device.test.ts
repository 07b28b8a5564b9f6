/**
 * Ports of test_tree's index, file list, expiry and phased-percentage cases (server-reference
 * §10.6) on real files and keys.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Device } from "../../src/tree/index.js";
import { rejection, signedFile, treeFixture, verifySignature, verifyTree } from "./fixture.js";

const EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

describe("Device images (test_index)", () => {
  it("validates create_image, stores the exact dicts, describes, removes, and rejects bad files", async () => {
    const fx = await treeFixture();
    const { config, signer, pub } = fx;
    // A device directory outside the tree, as in the reference test.
    const device = new Device(config, fx.inst.base, { signer });

    const fail = async (p: Promise<unknown>) => rejection(p);
    let err = await fail(device.create_image("full", 1234, "test", []));
    expect([err.kind, err.message]).toEqual(["Exception", `No file passed for this image. (full image 1234 in ${device.indexpath})`]);
    err = await fail(device.create_image("full", 1234, "test", ["file"]));
    expect(err.message).toBe(`Specified file doesn't exists: ${join(pub, "file")}`);
    writeFileSync(join(pub, "file"), "");
    err = await fail(device.create_image("full", 1234, "test", ["file"]));
    expect(err.message).toBe(`The GPG file signature doesn't exists: ${join(pub, "file")}.asc`);
    await signer.signFile("image-signing", join(pub, "file"));
    err = await fail(device.create_image("delta", 1234, "test", ["file"]));
    expect([err.kind, err.message]).toEqual(["KeyError", "Missing base version for delta image. (delta image 1234 (base undefined))"]);
    err = await fail(device.create_image("full", 1234, "test", ["file"], 1233));
    expect([err.kind, err.message]).toEqual(["KeyError", "Base version set for full image. (full image 1234)"]);
    err = await fail(device.create_image("delta", 1234, "test", ["file"], { base: 1233, minversion: 1233 }));
    expect([err.kind, err.message]).toEqual(["KeyError", "Minimum version set for delta image. (delta image 1234 (base 1233))"]);

    await signedFile(signer, join(pub, "second"));
    await device.create_image("full", 1234, "abc", ["file", "second"], { minversion: 1233, bootme: true });
    await device.create_image("delta", 1234, "abc", ["file", "second"], 1233, true, null, "blah");
    const files = [
      { signature: "/file.asc", path: "/file", checksum: EMPTY_SHA, size: 0, order: 0 },
      { signature: "/second.asc", path: "/second", checksum: EMPTY_SHA, size: 0, order: 1 },
    ];
    expect(await device.list_images()).toEqual([
      { bootme: true, description: "abc", minversion: 1233, type: "full", version: 1234, files },
      { bootme: true, description: "abc", type: "delta", base: 1233, version: 1234, version_detail: "blah", files },
    ]);

    await device.set_description("delta", 1234, "test", { fr: "essai" }, 1233);
    const entry = await device.get_image("delta", 1234, 1233);
    expect(entry.description).toBe("test");
    expect(entry.description_fr).toBe("essai");
    err = await fail(device.set_description("delta", 1234, "test", ["test"] as never, 1233));
    expect(err.kind).toBe("TypeError");
    expect(err.message).toMatch(/^translations must be a dict\. /);

    verifySignature(device.indexpath);

    await device.remove_image("delta", 1234, 1233);
    await device.remove_image("full", 1234);
    expect(await device.list_images()).toEqual([]);
    verifySignature(device.indexpath);
    err = await fail(device.remove_image("invalid", 1234));
    expect([err.kind, err.message]).toEqual(["ValueError", `Invalid image type: invalid (${device.indexpath})`]);
    expect((await fail(device.remove_image("delta", 1234))).kind).toBe("ValueError");
    err = await fail(device.remove_image("delta", 1234, 1232));
    expect([err.kind, err.message]).toEqual(["IndexError", `Couldn't find a match. (delta image 1234 (base 1232) in ${device.indexpath})`]);

    writeFileSync(device.indexpath, "test");
    err = await fail(device.list_images());
    expect(err.kind).toBe("ValueError");
    expect(err.message).toContain(device.indexpath);
    writeFileSync(device.indexpath, "[]");
    err = await fail(device.list_images());
    expect([err.kind, err.message]).toEqual(["TypeError", `Invalid index.json, not a dict. (${device.indexpath})`]);
  });

  it("refuses versions devices cannot take, unusable URL paths, and clashing file names", async () => {
    const fx = await treeFixture();
    const { tree, signer, pub } = fx;
    await tree.create_channel("c");
    await tree.create_device("c", "d");
    const dev = await tree.get_device("c", "d");
    await signedFile(signer, join(pub, "pool/a.tar.xz"));
    await signedFile(signer, join(pub, "other/a.tar.xz"));
    for (const v of [0, 65536, 70000, 1.5]) {
      const err = await rejection(dev.create_image("full", v, "x", ["pool/a.tar.xz"]));
      expect(err.kind).toBe("ValueError");
      expect(err.message).toContain(`Invalid version: ${v}`);
    }
    expect((await rejection(dev.create_image("delta", 2, "x", ["pool/a.tar.xz"], 70000))).message).toContain("Invalid base: 70000");
    expect((await rejection(dev.create_image("full", 2, "x", ["pool//a.tar.xz"]))).message).toContain("empty segment");
    expect((await rejection(dev.create_image("full", 2, "x", ["pool/a.tar.xz", "pool/a.tar.xz"]))).message).toContain("twice");
    expect((await rejection(dev.create_image("other", 2, "x", ["pool/a.tar.xz"]))).message).toBe(
      "Invalid image type: other (cannot create other image 2)",
    );
    await dev.create_image("full", 2, "x", ["pool/a.tar.xz"]);
    const err = await rejection(dev.create_image("full", 3, "x", ["other/a.tar.xz"]));
    expect(err.message).toContain("/other/a.tar.xz and /pool/a.tar.xz have the same file name 'a.tar.xz'");
    // Images stay sorted by version whatever the order they were added in (installer: last full wins).
    await dev.create_image("full", 1, "x", ["pool/a.tar.xz"]);
    await dev.create_image("delta", 2, "x", ["pool/a.tar.xz"], 1);
    expect((await dev.list_images()).map((i) => `${i.type}${i.version}`)).toEqual(["full1", "full2", "delta2"]);
    verifyTree(pub);
  });
});

describe("missing and orphaned files (test_file_lists)", () => {
  it("ignores gpg/, reports and removes strays, keeps keyrings, images and sidecars", async () => {
    const fx = await treeFixture();
    const { tree, signer } = fx;
    await tree.create_channel("test");
    await tree.create_device("test", "test");
    expect(await tree.list_missing_files()).toEqual([]);
    expect(await tree.list_orphaned_files()).toEqual([]);

    mkdirSync(join(tree.path, "gpg"), { recursive: true });
    writeFileSync(join(tree.path, "gpg/image-master.tar.xz"), "");
    expect(await tree.list_orphaned_files()).toEqual([]);

    mkdirSync(join(tree.path, "invalid"));
    expect(await tree.list_orphaned_files()).toEqual([join(tree.path, "invalid")]);
    await tree.cleanup_tree();
    expect(await tree.list_orphaned_files()).toEqual([]);
    writeFileSync(join(tree.path, "invalid"), "");
    expect(await tree.list_orphaned_files()).toEqual([join(tree.path, "invalid")]);
    await tree.cleanup_tree();
    expect(await tree.list_orphaned_files()).toEqual([]);

    const keyring = await signedFile(signer, join(tree.path, "gpg/device.tar.xz"));
    await tree.set_device_keyring("test", "test", keyring);
    expect((await tree.list_channels()).test.devices.test.keyring).toEqual({
      path: "/gpg/device.tar.xz",
      signature: "/gpg/device.tar.xz.asc",
    });
    expect(await tree.list_orphaned_files()).toEqual([]);

    const image = await signedFile(signer, join(tree.path, "test/test/image.tar.xz"));
    await signedFile(signer, join(tree.path, "test/test/image.json"));
    await (await tree.get_device("test", "test")).create_image("full", 12345, "test", [image]);
    expect(await tree.list_orphaned_files()).toEqual([]);

    verifyTree(tree.path);

    // Missing: an index names a file that went away.
    const { rmSync } = await import("node:fs");
    rmSync(image);
    expect(await tree.list_missing_files()).toEqual([image]);
  });
});

describe("expiry (test_expiry)", () => {
  it("keeps the newest full images and the deltas between kept versions: 10, 10, 6, 6, 3, 1, 0", async () => {
    const fx = await treeFixture();
    const { tree, signer } = fx;
    await tree.create_channel("test");
    await tree.create_device("test", "test");
    const image = await signedFile(signer, join(tree.path, "test/test/image.tar.xz"));
    const dev = await tree.get_device("test", "test");
    await dev.create_image("full", 1, "test", [image]);
    await dev.create_image("full", 2, "test", [image]);
    await dev.create_image("delta", 2, "test", [image], 1);
    await dev.create_image("full", 3, "test", [image]);
    await dev.create_image("delta", 3, "test", [image], 2);
    await dev.create_image("delta", 3, "test", [image], 1);
    await dev.create_image("full", 4, "test", [image]);
    await dev.create_image("delta", 4, "test", [image], 3);
    await dev.create_image("delta", 4, "test", [image], 2);
    await dev.create_image("delta", 4, "test", [image], 1);
    const counts: number[] = [(await dev.list_images()).length];
    for (const keep of [10, 3, 3, 2, 1, 0]) {
      await dev.expire_images(keep);
      counts.push((await dev.list_images()).length);
    }
    expect(counts).toEqual([10, 10, 6, 6, 3, 1, 0]);
    verifyTree(tree.path);
  });
});

describe("phased percentage (test_phased_percentage)", () => {
  it("sets and reads it on the latest version only, with the reference's errors", async () => {
    const fx = await treeFixture();
    const { tree, signer } = fx;
    await tree.create_channel("test");
    await tree.create_device("test", "test");
    await signedFile(signer, join(tree.path, "test/test/full"));
    const dev = await tree.get_device("test", "test");
    await dev.create_image("full", 1234, "abc", ["test/test/full"]);
    await dev.set_phased_percentage(1234, 20);
    expect(await dev.get_phased_percentage(1234)).toBe(20);
    await dev.create_image("full", 1235, "abc", ["test/test/full"]);
    expect(await dev.get_phased_percentage(1235)).toBe(100);
    // The older version lost its percentage (only the latest may carry one).
    expect(await dev.get_phased_percentage(1234)).toBe(100);
    await dev.set_phased_percentage(1235, 0);
    expect(await dev.get_phased_percentage(1235)).toBe(0);
    await dev.set_phased_percentage(1235, 100);
    expect((await dev.get_image("full", 1235))["phased-percentage"]).toBeUndefined();

    const e = async (p: Promise<unknown>) => {
      const err = await rejection(p);
      return [err.kind, err.message];
    };
    expect(await e(dev.set_phased_percentage(1235, "invalid" as never))).toEqual([
      "TypeError",
      `percentage must be an integer. (got "invalid" for version 1235 in ${dev.indexpath})`,
    ]);
    expect((await e(dev.set_phased_percentage(1235, 10.5)))[0]).toBe("TypeError");
    expect(await e(dev.set_phased_percentage(1235, 101))).toEqual([
      "ValueError",
      `percentage must be >= 0 and <= 100. (got 101 for version 1235 in ${dev.indexpath})`,
    ]);
    expect((await e(dev.set_phased_percentage(1235, -1)))[0]).toBe("ValueError");
    expect(await e(dev.set_phased_percentage(4242, 50))).toEqual(["IndexError", `Version doesn't exist: 4242 (${dev.indexpath})`]);
    expect(await e(dev.set_phased_percentage(1234, 50))).toEqual([
      "Exception",
      `Phased percentage can only be set on the latest image (version 1234; latest is 1235 in ${dev.indexpath})`,
    ]);
    expect(await e(dev.get_phased_percentage(4242))).toEqual(["IndexError", `Invalid version number: 4242 (${dev.indexpath})`]);
    verifyTree(tree.path);
  });
});

describe("createImages (one commit for an import's full image and its deltas)", () => {
  it("adds all images together or none, using known checksums instead of re-reading files", async () => {
    const fx = await treeFixture();
    const { tree, signer, pub } = fx;
    await tree.create_channel("c");
    await tree.create_device("c", "d");
    const dev = await tree.get_device("c", "d");
    const full = await signedFile(signer, join(pub, "pool/ubports-2.tar.xz"), "two");
    const delta = await signedFile(signer, join(pub, "pool/ubports-2.delta-ubports-1.tar.xz"), "d");
    const { fingerprint } = await import("./fixture.js");
    const before = fingerprint(pub);
    const err = await rejection(
      dev.createImages([
        { type: "full", version: 2, description: "v2", paths: [full] },
        { type: "delta", version: 2, description: "v2", paths: [delta] }, // no base
      ]),
    );
    expect(err.message).toBe("Missing base version for delta image. (delta image 2 (base undefined))");
    expect(fingerprint(pub)).toEqual(before);

    const known = new Map([[full, { sha256: "ab".repeat(32), size: 3 }]]);
    await dev.create_images(
      [
        { type: "full", version: 2, description: "v2", paths: [full], versionDetail: "v=2" },
        { type: "delta", version: 2, description: "v2", paths: [delta], base: 1, version_detail: "v=2" },
      ],
      { checksums: known },
    );
    const images = await dev.list_images();
    expect(images.map((i) => [i.type, i.version, i.base, i.version_detail])).toEqual([
      ["full", 2, undefined, "v=2"],
      ["delta", 2, 1, "v=2"],
    ]);
    expect(images[0].files[0].checksum).toBe("ab".repeat(32));
    expect(images[1].files[0].checksum).toBe("18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4");
    verifyTree(pub);
  });
});
