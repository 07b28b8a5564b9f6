/**
 * What the reference does not promise and we do: a refused or failing operation leaves every
 * byte of the tree as it was; generated_at moves only with the content; calls run one at a
 * time in call order even when nobody awaits them; names that would escape the tree or break
 * URLs are refused.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import type { KeyName, Signer } from "../../src/pgp/signer.js";
import { openTree } from "../../src/tree/index.js";
import { fingerprint, publishBasicImage, rejection, signedFile, treeFixture, verifyTree } from "./fixture.js";

async function populated() {
  const fx = await treeFixture();
  const { tree } = fx;
  await tree.create_channel("parent");
  await tree.create_device("parent", "device");
  await publishBasicImage(fx, "parent", "device");
  await tree.create_channel_alias("alias", "parent");
  await tree.create_channel("other");
  return fx;
}

describe("a refused operation changes nothing", () => {
  it("names the missing channel, device or version and leaves every file byte-identical", async () => {
    const fx = await populated();
    const { tree, pub } = fx;
    const dev = await tree.get_device("parent", "device");
    const cases: Array<[Promise<unknown>, string]> = [
      [tree.create_device("missing", "d"), "Couldn't find channel: missing"],
      [tree.create_device("parent", "device"), "Device already exists: device"],
      [tree.remove_device("parent", "missing"), "Couldn't find device: missing"],
      [tree.remove_channel("missing"), "Couldn't find channel: missing"],
      [tree.rename_channel("missing", "x"), "Couldn't find channel: missing"],
      [tree.rename_channel("parent", "other"), "Channel already exists: other"],
      [tree.hide_channel("missing"), "Couldn't find channel: missing"],
      [tree.sync_alias("missing"), "Couldn't find channel: missing"],
      [tree.sync_aliases("missing"), "Couldn't find channel: missing"],
      [tree.sync_redirects("missing"), "Couldn't find channel: missing"],
      [tree.create_channel_alias("a2", "missing"), "Couldn't find target channel: missing"],
      [tree.change_channel_alias("alias", "missing"), "Couldn't find target channel: missing"],
      [tree.create_per_device_channel_redirect("missing", "other", "parent"), "Couldn't find device on target channel: parent, missing"],
      [tree.set_device_keyring("parent", "missing", "x"), "Couldn't find device: missing"],
      [tree.set_device_keyring("parent", "device", "nope.tar.xz"), `Specified GPG keyring doesn't exists: ${join(pub, "nope.tar.xz")}`],
      // The device directory would be created, then the keyring check fails: it must go again.
      [tree.create_device("other", "newdev", "nope.tar.xz"), `Specified GPG keyring doesn't exists: ${join(pub, "nope.tar.xz")}`],
      [dev.remove_image("full", 999), `Couldn't find a match. (full image 999 in ${dev.indexpath})`],
      [dev.set_phased_percentage(999, 10), `Version doesn't exist: 999 (${dev.indexpath})`],
      [dev.set_description("full", 999, "x"), `Couldn't find a match. (full image 999 in ${dev.indexpath})`],
      [
        dev.create_image("full", 1300, "x", ["parent/device/missing"]),
        `Specified file doesn't exists: ${join(pub, "parent/device/missing")}`,
      ],
    ];
    for (const [op, message] of cases) {
      const before = fingerprint(pub);
      expect((await rejection(op)).message).toBe(message);
      expect(fingerprint(pub), message).toEqual(before);
    }
    verifyTree(pub);
  });

  it("takes back a multi-document change that fails half-way (alias sync after create_device)", async () => {
    const fx = await populated();
    const { tree, pub, signer } = fx;
    // A second device whose version sidecar is damaged: syncing it to the alias must fail...
    await tree.create_device("parent", "second");
    await publishBasicImage(fx, "parent", "second");
    writeFileSync(join(pub, "parent/second/version-1234.json"), "{broken");
    await tree.remove_device("alias", "second").catch(() => {});
    const before = fingerprint(pub);
    // ...after the alias directory, its index and a version tarball were already prepared.
    const err = await rejection(tree.sync_alias("alias"));
    expect(err.message).toContain(`Cannot read version_detail from ${join(pub, "parent/second/version-1234.json")}`);
    expect(fingerprint(pub)).toEqual(before);
    // Without the damage the same call succeeds and creates the alias device.
    await signedFile(signer, join(pub, "parent/second/version-1234.json"), JSON.stringify({ "channel.ini": { version_detail: "v" } }));
    await tree.sync_alias("alias");
    expect(readFileSync(join(pub, "alias/second/index.json"), "utf8")).toContain("/alias/second/version-1234.tar.xz");
    verifyTree(pub);
  });

  it("writes nothing when signing fails in the middle of a commit", async () => {
    const fx = await populated();
    const real = new LocalSigner(fx.config.gpg_key_path);
    let left = 1; // the first document signs, the second fails
    const flaky: Signer = {
      begin: (k: KeyName) => real.begin(k),
      signFile: (k: KeyName, p: string, d?: string) => real.signFile(k, p, d),
      async signStream(k: KeyName, data: Readable) {
        if (left-- <= 0) throw new Error("Cannot sign: the key is gone");
        return real.signStream(k, data);
      },
    };
    const tree = openTree(fx.config, flaky);
    const before = fingerprint(fx.pub);
    // create_device commits the new index.json, then channels.json.
    expect((await rejection(tree.create_device("other", "newdev"))).message).toBe("Cannot sign: the key is gone");
    expect(fingerprint(fx.pub)).toEqual(before);
    verifyTree(fx.pub);
  });
});

describe("generated_at and rewrites", () => {
  it("rewrites an index only when its content changes, and then with a new generated_at", async () => {
    let now = new Date(Date.UTC(2026, 0, 1, 10, 0, 0));
    const fx = await treeFixture({ clock: () => now });
    const { tree, pub, signer } = fx;
    await tree.create_channel("c");
    await tree.create_device("c", "d");
    const index = join(pub, "c/d/index.json");
    expect(JSON.parse(readFileSync(index, "utf8"))).toEqual({ global: { generated_at: "Thu Jan 01 10:00:00 UTC 2026" }, images: [] });
    await signedFile(signer, join(pub, "c/d/f"));
    const dev = await tree.get_device("c", "d");
    now = new Date(Date.UTC(2026, 0, 2, 11, 30, 5));
    await dev.create_image("full", 1, "x", ["c/d/f"]);
    const first = readFileSync(index, "utf8");
    expect(first).toContain('"generated_at": "Fri Jan 02 11:30:05 UTC 2026"');

    now = new Date(Date.UTC(2026, 5, 3));
    const before = fingerprint(pub);
    await dev.set_phased_percentage(1, 100); // already 100: no change
    await dev.set_description("full", 1, "x"); // same description: no change
    await tree.sync_aliases("c");
    await tree.create_channel("c2");
    await tree.remove_channel("c2");
    const after = fingerprint(pub);
    delete before["channels.json"];
    delete before["channels.json.asc"];
    delete after["channels.json"];
    delete after["channels.json.asc"];
    expect(after).toEqual(before);

    // A stale phased percentage on an old version is dropped on read, and on the next commit.
    const doc = JSON.parse(first) as IndexDoc;
    doc.images[0]["phased-percentage"] = 5;
    doc.images.push({ ...doc.images[0], version: 2 });
    delete doc.images[1]["phased-percentage"];
    writeFileSync(index, JSON.stringify(doc));
    expect((await dev.list_images())[0]["phased-percentage"]).toBeUndefined();
    expect(readFileSync(index, "utf8")).toBe(JSON.stringify(doc)); // reads never write
    await dev.set_phased_percentage(2, 100);
    expect(readFileSync(index, "utf8")).not.toContain("phased-percentage");
    expect(readFileSync(index, "utf8")).toContain('"generated_at": "Wed Jun 03 00:00:00 UTC 2026"');
    verifyTree(pub);
  });
});

describe("the operation queue", () => {
  it("runs un-awaited shell-style calls one at a time, in call order, each to completion", async () => {
    const fx = await treeFixture();
    const { tree, pub, config, signer, events } = fx;
    mkdirSync(config.gpg_keyring_path, { recursive: true });
    const names = ["archive-master", "image-master", "image-signing", "blacklist"];
    const signers: Record<string, KeyName> = {
      "archive-master": "archive-master",
      "image-master": "archive-master",
      "image-signing": "image-master",
      blacklist: "image-master",
    };
    for (const n of names) {
      // The first is the biggest: without the queue it would finish last.
      await signedFile(
        signer,
        join(config.gpg_keyring_path, `${n}.tar.xz`),
        Buffer.alloc(n === "archive-master" ? 8 << 20 : 10, n),
        signers[n],
      );
    }
    const done: string[] = [];
    // What an admin types in the shell: no await.
    for (const n of names) void tree.publish_keyring(n).then(() => done.push(n));
    const failed = tree.publish_keyring("missing"); // a failure in the queue...
    void tree.create_channel("after"); // ...does not stop what follows
    await rejection(failed);
    expect(await tree.list_channels()).toEqual({ after: { devices: {} } });
    expect(done).toEqual(names);
    const publishEvents = events.filter((e) => e.op === "publish_keyring").map((e) => `${e.phase}:${String(e.args[0])}`);
    expect(publishEvents).toEqual([...names.flatMap((n) => [`start:${n}`, `end:${n}`]), "start:missing", "error:missing"]);
    for (const n of names) {
      expect(readFileSync(join(pub, "gpg", `${n}.tar.xz`)).equals(readFileSync(join(config.gpg_keyring_path, `${n}.tar.xz`))), n).toBe(
        true,
      );
    }
    verifyTree(pub);
  });
});

describe("two Trees over one directory", () => {
  it("share the queue, so concurrent changes from both are all kept", async () => {
    const fx = await treeFixture();
    const other = openTree(fx.config, fx.signer);
    const names = ["a", "b", "c", "d", "e", "f"];
    await Promise.all(names.map((n, i) => (i % 2 ? other : fx.tree).create_channel(n)));
    expect(Object.keys(await fx.tree.list_channels()).sort()).toEqual(names);
    verifyTree(fx.pub);
  });
});

describe("names", () => {
  it("refuses channel and device names that would escape the tree or break URLs", async () => {
    const fx = await treeFixture();
    const { tree, pub } = fx;
    await tree.create_channel("a");
    await tree.create_device("a", "b");
    const before = fingerprint(pub);
    for (const bad of ["../x", "a//b", "/a", "a/", "x/../y", "pool", "gpg/x", "channels.json", "", "a\nb", "keys", "__proto__"]) {
      const err = await rejection(tree.create_channel(bad));
      expect(err.kind, bad).toBe("ValueError");
      expect(err.message, bad).toContain("Cannot create channel");
    }
    for (const bad of ["x/y", "..", ".", "", "get"]) {
      expect((await rejection(tree.create_device("a", bad))).kind, bad).toBe("ValueError");
    }
    // Nested channels may not live inside a device directory, nor devices hold channels.
    expect((await rejection(tree.create_channel("a/b"))).message).toContain("inside the directory of device 'a/b'");
    expect((await rejection(tree.create_channel("a/b/c"))).message).toContain("inside the directory of device 'a/b'");
    expect((await rejection(tree.rename_channel("a", "a/sub"))).message).toContain("one directory would be inside the other");
    expect(fingerprint(pub)).toEqual(before);
    await tree.create_channel("x/y");
    await tree.create_channel("x");
    expect((await rejection(tree.create_device("x", "y"))).message).toContain("would hold channel 'x/y'");
    verifyTree(pub);
  });

  it("removing or renaming a channel leaves the nested channels' directories alone", async () => {
    const fx = await treeFixture();
    const { tree, pub } = fx;
    await tree.create_channel("a");
    await tree.create_device("a", "d");
    await tree.create_channel("a/b");
    await tree.create_device("a/b", "e");
    await tree.rename_channel("a", "z");
    expect(await tree.list_missing_files()).toEqual([]);
    expect(readFileSync(join(pub, "z/d/index.json"), "utf8")).toContain("images");
    await tree.create_channel("a");
    await tree.remove_channel("a");
    expect(await tree.list_missing_files()).toEqual([]);
    expect(Object.keys(await tree.list_channels()).sort()).toEqual(["a/b", "z"]);
    verifyTree(pub);
  });

  it("the signature checker itself catches a tampered document", async () => {
    const fx = await treeFixture();
    await fx.tree.create_channel("c");
    writeFileSync(join(fx.pub, "channels.json"), readFileSync(join(fx.pub, "channels.json"), "utf8").replace("c", "d"));
    expect(() => verifyTree(fx.pub)).toThrow(/gpg --verify channels.json.asc/);
  });
});
