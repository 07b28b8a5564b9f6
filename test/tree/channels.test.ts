/**
 * Port of the reference's test_tree.test_channels (server-reference §10.6) on a real
 * instance with real keys, plus the exact messages and kinds of Appendix A.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Device, Tree } from "../../src/tree/index.js";
import { rejection, signedFile, treeFixture, verifyTree, REFERENCE_LAYOUT } from "./fixture.js";

describe("Tree channels and devices (test_channels)", () => {
  it("publishes keyrings, creates/removes/hides channels and devices, rebuilds the index", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub, config, signer } = fx;
    expect(await tree.list_channels()).toEqual({});

    // publish_keyring needs both the tarball and its signature.
    mkdirSync(config.gpg_keyring_path, { recursive: true });
    const keyring = join(config.gpg_keyring_path, "image-signing.tar.xz");
    let err = await rejection(tree.publish_keyring("image-signing"));
    expect(err.message).toBe(`Missing keyring: ${keyring}`);
    writeFileSync(keyring, "not really a keyring");
    err = await rejection(tree.publish_keyring("image-signing"));
    expect(err.message).toBe(`Missing keyring signature: ${keyring}.asc`);
    await signer.signFile("image-master", keyring);
    expect(await tree.publish_keyring("image-signing")).toBe(true);
    expect(readFileSync(join(pub, "gpg/image-signing.tar.xz"), "utf8")).toBe("not really a keyring");
    expect(existsSync(join(pub, "gpg/image-signing.tar.xz.asc"))).toBe(true);

    // A Tree on a path that is not a directory.
    expect(() => new Tree(config, join(fx.inst.base, "invalid"))).toThrow(`Invalid path: ${join(fx.inst.base, "invalid")}`);

    await tree.create_channel("first");
    await tree.create_channel("second");
    err = await rejection(tree.create_channel("second"));
    expect([err.kind, err.message]).toEqual(["KeyError", "Channel already exists: second"]);
    await tree.remove_channel("first");
    await tree.remove_channel("second");
    err = await rejection(tree.remove_channel("second"));
    expect([err.kind, err.message]).toEqual(["KeyError", "Couldn't find channel: second"]);

    // Bad channels.json: TypeError for a non-object, ValueError for invalid JSON, naming the file.
    writeFileSync(tree.indexpath, "[]");
    err = await rejection(tree.list_channels());
    expect([err.kind, err.message]).toEqual(["TypeError", `Invalid channels.json, not a dict. (${tree.indexpath})`]);
    writeFileSync(tree.indexpath, "{'a': 'a'}");
    err = await rejection(tree.list_channels());
    expect(err.kind).toBe("ValueError");
    expect(err.message).toContain(tree.indexpath);
    rmSync(tree.indexpath);
    rmSync(tree.indexpath + ".asc");

    await tree.create_channel("testing");
    expect(await tree.list_channels()).toEqual({ testing: { devices: {} } });
    await tree.hide_channel("testing");
    expect(await tree.list_channels()).toEqual({ testing: { devices: {}, hidden: true } });
    await tree.show_channel("testing");
    expect(await tree.list_channels()).toEqual({ testing: { devices: {} } });
    expect((await rejection(tree.hide_channel("invalid"))).kind).toBe("KeyError");
    expect((await rejection(tree.show_channel("invalid"))).message).toBe("Couldn't find channel: invalid");
    await tree.remove_channel("testing");

    await tree.create_channel("testing");
    await tree.create_device("testing", "test");
    expect(existsSync(join(pub, "testing/test/index.json"))).toBe(true);
    expect(await tree.list_channels()).toEqual({ testing: { devices: { test: { index: "/testing/test/index.json" } } } });
    err = await rejection(tree.create_device("invalid", "test"));
    expect([err.kind, err.message]).toEqual(["KeyError", "Couldn't find channel: invalid"]);
    err = await rejection(tree.create_device("testing", "test"));
    expect([err.kind, err.message]).toEqual(["KeyError", "Device already exists: test"]);

    expect((await rejection(tree.list_devices("invalid"))).kind).toBe("KeyError");
    expect(await tree.list_devices("testing")).toEqual(["test"]);

    // generate_index: wrong magic; a directory without index.json is no device.
    mkdirSync(join(pub, "testing/empty"));
    err = await rejection(tree.generate_index());
    expect(err.message).toBe("Invalid magic value, please read the help.");
    await tree.generate_index("I know what I'm doing");
    const plain = { testing: { devices: { test: { index: "/testing/test/index.json" } } } };
    expect(await tree.list_channels()).toEqual(plain);
    // A device keyring is picked up only once its signature exists.
    const deviceKeyring = join(pub, "testing/test/device.tar.xz");
    writeFileSync(deviceKeyring, "");
    await tree.generate_index("I know what I'm doing");
    expect(await tree.list_channels()).toEqual(plain);
    await signer.signFile("image-signing", deviceKeyring);
    await tree.generate_index("I know what I'm doing");
    const withKeyring = {
      testing: {
        devices: {
          test: {
            index: "/testing/test/index.json",
            keyring: { path: "/testing/test/device.tar.xz", signature: "/testing/test/device.tar.xz.asc" },
          },
        },
      },
    };
    expect(await tree.list_channels()).toEqual(withKeyring);

    err = await rejection(tree.get_device("invalid", "test"));
    expect([err.kind, err.message]).toEqual(["KeyError", "Couldn't find channel: invalid"]);
    err = await rejection(tree.get_device("testing", "invalid"));
    expect([err.kind, err.message]).toEqual(["KeyError", "Couldn't find device: invalid"]);
    const dev = await tree.get_device("testing", "test");
    expect(dev).toBeInstanceOf(Device);
    expect(dev.path).toBe(join(pub, "testing/test"));

    await tree.create_device("testing", "to-remove");
    expect(existsSync(join(pub, "testing/to-remove/index.json"))).toBe(true);
    expect((await rejection(tree.remove_device("invalid", "test"))).kind).toBe("KeyError");
    expect((await rejection(tree.remove_device("testing", "invalid"))).message).toBe("Couldn't find device: invalid");
    await tree.remove_device("testing", "to-remove");
    expect(existsSync(join(pub, "testing/to-remove"))).toBe(false);
    expect(await tree.list_channels()).toEqual(withKeyring);

    // set_device_keyring: unknown channel/device, missing file, missing signature.
    expect((await rejection(tree.set_device_keyring("invalid", "test", "invalid"))).kind).toBe("KeyError");
    expect((await rejection(tree.set_device_keyring("testing", "invalid", "invalid"))).kind).toBe("KeyError");
    await tree.set_device_keyring("testing", "test", "testing/test/device.tar.xz");
    err = await rejection(tree.set_device_keyring("testing", "test", "invalid"));
    expect(err.message).toBe(`Specified GPG keyring doesn't exists: ${join(pub, "invalid")}`);
    writeFileSync(join(pub, "unsigned"), "");
    err = await rejection(tree.set_device_keyring("testing", "test", "unsigned"));
    expect(err.message).toBe(`The GPG keyring signature doesn't exists: ${join(pub, "unsigned")}.asc`);
    rmSync(join(pub, "unsigned"));

    expect(verifyTree(pub)).toBeGreaterThan(3);
    await signedFile(signer, join(pub, "extra"), "x"); // the checker itself must see new files
    expect(verifyTree(pub)).toBeGreaterThan(4);
  });
});
