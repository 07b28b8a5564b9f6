/**
 * The operator's standard walkthrough through the real CLI: keyrings, channel, device, the
 * four published keyrings, an image made by hand from signed files, an alias, a redirect,
 * phasing, tagging, copying; then every signature in the tree checked with real gpg against
 * the key that must have made it. Plus: an operation on a missing channel, device or version
 * fails with one line naming it and leaves every byte of the tree as it was.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ChannelsDoc } from "../../src/model/channels.js";
import { readVersionIni } from "../../src/tree/index.js";
import { fingerprint, signedFile, verifyTree } from "../tree/fixture.js";
import { adminFixture, poolTarball, publishFull, readIndex } from "./fixture.js";

const KEYRINGS = ["archive-master", "image-master", "image-signing", "blacklist"];

describe("the standard walkthrough from the CLI", () => {
  it("builds a signed tree every device can verify", async () => {
    const fx = await adminFixture({ keyrings: true, extraConfig: "versioned_index = false\n" });
    expect(fx.ok("channel", "create", "test")).toBe("I: created channel test\n");
    expect(fx.ok("device", "create", "test", "mako")).toBe("I: created device test/mako\n");
    for (const k of KEYRINGS) expect(fx.ok("keyring", "publish", k)).toBe(`I: published keyring gpg/${k}.tar.xz\n`);
    expect(readdirSync(join(fx.pub, "gpg")).sort()).toEqual(KEYRINGS.flatMap((k) => [`${k}.tar.xz`, `${k}.tar.xz.asc`]).sort());

    // An image by hand: signed files already in the tree, and a version tarball.
    await poolTarball(fx, "pool/ubports-1111.tar.xz", { "system/etc/os-release": "1\n" });
    await poolTarball(fx, "pool/keyring-2222.tar.xz", { "archive-master.tar.xz": "k\n" });
    await publishFull(
      fx,
      "test",
      "mako",
      1,
      ["pool/ubports-1111.tar.xz", "pool/keyring-2222.tar.xz"],
      ["ubports=1111", "keyring=archive-master"],
    );
    expect(fx.ok("image", "describe", "test", "mako", "1", "First image", "--lang", "fr=Première image")).toBe(
      "I: described test/mako full 1 (+ fr)\n",
    );

    expect(fx.ok("channel", "alias", "stable", "test")).toBe("I: created alias stable of test\n");
    expect(fx.ok("channel", "redirect", "old", "test")).toBe("I: created redirect old to test\n");
    expect(fx.ok("set-phased-percentage", "test", "mako", "1", "40")).toBe(
      "I: set phased percentage of test/mako version 1 to 40% (was 100%)\n",
    );
    fx.ok("tag-image", "test", "mako", "1", "OTA-1");
    fx.ok("channel", "create", "rc");
    fx.ok("device", "create", "rc", "mako");
    fx.ok("copy-image", "test", "rc", "mako");

    const channels = JSON.parse(fx.ok("channel", "list", "--json")) as ChannelsDoc;
    expect(Object.keys(channels).sort()).toEqual(["old", "rc", "stable", "test"]);
    expect(channels.stable).toMatchObject({ alias: "test" });
    expect(channels.old).toMatchObject({ redirect: "test", hidden: true, devices: { mako: { index: "/test/mako/index.json" } } });
    expect(fx.ok("channel", "list")).toBe(
      "old (redirect to test, hidden): 1 device\nrc: 1 device\nstable (alias of test): 1 device\ntest: 1 device\n",
    );

    const test = readIndex(fx, "test", "mako").images;
    expect(test.map((i) => [i.type, i.version, i.base ?? null, i["phased-percentage"] ?? 100])).toEqual([
      ["full", 1, null, 100],
      ["full", 2, null, 40],
      ["delta", 2, 1, 40],
    ]);
    expect(test[0]).toMatchObject({ description: "First image", description_fr: "Première image" });
    // The alias followed every step, with its own version tarballs.
    const stable = readIndex(fx, "stable", "mako").images;
    expect(stable.map((i) => [i.type, i.version, i["phased-percentage"] ?? 100])).toEqual([
      ["full", 1, 100],
      ["full", 2, 40],
      ["delta", 2, 40],
    ]);
    expect(await readVersionIni(join(fx.pub, "stable/mako/version-2.tar.xz"))).toMatchObject({
      channel: "stable",
      channel_target: "test",
      build_number: "2",
    });
    expect(readIndex(fx, "rc", "mako").images.map((i) => [i.version, i.version_detail])).toEqual([
      [1, "ubports=1111,keyring=archive-master,tag=OTA-1,version=1"],
    ]);
    expect(fx.ok("image", "list", "test", "mako")).toBe(
      "full 1: 3 files [ubports=1111,keyring=archive-master,version=1]\n" +
        "full 2: 3 files, phased 40% [ubports=1111,keyring=archive-master,tag=OTA-1,version=2]\n" +
        "delta 1→2: 2 files, phased 40% [ubports=1111,keyring=archive-master,tag=OTA-1,version=2]\n",
    );

    // Every .asc: documents and images by image-signing, gpg/ keyrings by their parent key.
    // channels.json, 4 keyrings, test (index, 2 version tarballs + sidecars), 2 pool files,
    // stable (index, 2 version tarballs: no sidecars for alias copies), rc (index, version + sidecar).
    expect(verifyTree(fx.pub)).toBe(18);
    expect(fx.ok("cleanup-tree")).toBe("I: nothing to clean up\n");
  });
});

describe("operations on missing things", () => {
  it("fail with one line naming what is missing, and leave every file as it was", async () => {
    const fx = await adminFixture({ keyrings: true });
    fx.ok("channel", "create", "test");
    fx.ok("device", "create", "test", "mako");
    fx.ok("channel", "create", "other");
    await poolTarball(fx, "pool/ubports-1111.tar.xz", { "system/x": "1\n" });
    await publishFull(fx, "test", "mako", 1, ["pool/ubports-1111.tar.xz"], ["ubports=1111"]);
    const before = fingerprint(fx.pub);
    const cases: [string[], number, string | RegExp][] = [
      [["channel", "remove", "nope"], 1, "Couldn't find channel: nope"],
      [["channel", "hide", "nope"], 1, "Couldn't find channel: nope"],
      [["channel", "show", "nope"], 1, "Couldn't find channel: nope"],
      [["channel", "rename", "nope", "x"], 1, "Couldn't find channel: nope"],
      [["channel", "rename", "test", "other"], 1, "Channel already exists: other"],
      [["channel", "alias", "x", "nope"], 1, "Couldn't find target channel: nope"],
      [["channel", "alias", "other", "test"], 1, "Channel isn't an alias: other"],
      [["channel", "redirect", "x", "nope"], 1, "Couldn't find target channel: nope"],
      [["channel", "create", "test"], 1, "Channel already exists: test"],
      [["device", "create", "nope", "mako"], 1, "Couldn't find channel: nope"],
      [["device", "remove", "test", "nope"], 1, "Couldn't find device: nope"],
      [["device", "list", "nope"], 1, "Couldn't find channel: nope"],
      [["device", "keyring", "test", "nope", "x.tar.xz"], 1, "Couldn't find device: nope"],
      [["device", "keyring", "test", "mako", "nope.tar.xz"], 1, `Specified GPG keyring doesn't exists: ${join(fx.pub, "nope.tar.xz")}`],
      [["device", "redirect", "other", "mako", "nope"], 1, "Couldn't find target channel: nope"],
      [["keyring", "publish", "nope"], 1, `Missing keyring: ${join(fx.config.gpg_keyring_path, "nope")}.tar.xz`],
      [["image", "list", "test", "nope"], 1, "Couldn't find device: nope"],
      [["image", "remove", "test", "mako", "7"], 1, /^si: error: Couldn't find a match\. \(full image 7 in .*\/test\/mako\/index\.json\)$/],
      [["image", "remove", "test", "mako", "1", "--delta", "7"], 1, /^si: error: Couldn't find a match\. \(delta image 1 \(base 7\) in /],
      [["image", "describe", "nope", "mako", "1", "x"], 1, "Couldn't find channel: nope"],
      [["image", "describe", "test", "mako", "7", "x"], 1, /^si: error: Couldn't find a match\. \(full image 7 in /],
      [
        ["image", "create", "test", "mako", "2", "pool/nope.tar.xz"],
        1,
        `Specified file doesn't exists: ${join(fx.pub, "pool/nope.tar.xz")}`,
      ],
      [["image", "create", "test", "mako", "x", "pool/ubports-1111.tar.xz"], 2, "argument VERSION: invalid int value: 'x'"],
      [
        ["set-phased-percentage", "test", "mako", "7", "50"],
        1,
        "Cannot set the phased percentage of test/mako version 7: there is no such version (versions: 1)",
      ],
      [["set-phased-percentage", "nope", "mako", "1", "50"], 2, "Invalid channel: nope"],
      [["set-phased-percentage", "test", "nope", "1", "50"], 2, "Invalid device for source channel: nope"],
      [["tag-image", "test", "mako", "7", "T"], 2, "You can only tag the latest image."],
      [["copy-image", "test", "other", "mako"], 2, "Invalid device for destination channel: mako"],
    ];
    for (const [args, status, message] of cases) {
      const r = fx.inst.si(...args);
      expect(r.status, `si ${args.join(" ")}: ${r.stdout}${r.stderr}`).toBe(status);
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines, r.stderr).toHaveLength(1);
      if (typeof message === "string") expect(lines[0]).toBe(`si: error: ${message}`);
      else expect(lines[0]).toMatch(message);
      expect(fingerprint(fx.pub), `si ${args.join(" ")} changed the tree`).toEqual(before);
    }
  });

  it("refuses to change the images of an alias or a redirect, naming where they live", async () => {
    const fx = await adminFixture();
    fx.ok("channel", "create", "test");
    fx.ok("device", "create", "test", "mako");
    fx.ok("channel", "alias", "stable", "test");
    fx.ok("channel", "create", "pd");
    fx.ok("device", "redirect", "pd", "mako", "test");
    await signedFile(fx.signer, join(fx.pub, "pool/f.tar.xz"), "x");
    const before = fingerprint(fx.pub);
    let r = fx.inst.si("image", "create", "stable", "mako", "1", "pool/f.tar.xz");
    expect([r.status, r.stderr]).toEqual([
      1,
      "si: error: Cannot change the images of stable/mako: stable is an alias of test (its images are copies; change test/mako instead)\n",
    ]);
    r = fx.inst.si("image", "create", "pd", "mako", "1", "pool/f.tar.xz");
    expect([r.status, r.stderr]).toEqual([
      1,
      "si: error: Cannot change the images of pd/mako: the device is a redirect to test (change test/mako instead)\n",
    ]);
    expect(fingerprint(fx.pub)).toEqual(before);
    // Through the real channel, the alias follows in the same commit.
    expect(fx.ok("image", "create", "test", "mako", "1", "pool/f.tar.xz", "--version-detail", "v=1")).toBe(
      "I: created test/mako full 1 (1 file)\n",
    );
    expect(readIndex(fx, "stable", "mako").images.map((i) => i.version)).toEqual([1]);
    expect(fx.ok("image", "remove", "test", "mako", "1")).toBe("I: removed test/mako full 1\n");
    expect(readIndex(fx, "stable", "mako").images).toEqual([]);
  });
});

describe("re-sign-indexes", () => {
  it("re-signs channels.json, the indexes, the latest images and deltas with a rotated image-signing key", async () => {
    const fx = await adminFixture();
    fx.ok("channel", "create", "test");
    fx.ok("device", "create", "test", "mako");
    fx.ok("channel", "redirect", "old", "test");
    await poolTarball(fx, "pool/ubports-1.tar.xz", { "system/x": "1\n" });
    await poolTarball(fx, "pool/ubports-2.tar.xz", { "system/x": "2\n" });
    await publishFull(fx, "test", "mako", 1, ["pool/ubports-1.tar.xz"], ["u=1"]);
    await publishFull(fx, "test", "mako", 2, ["pool/ubports-2.tar.xz"], ["u=2"]);
    fx.ok("image", "create", "test", "mako", "2", "pool/ubports-2.tar.xz", "test/mako/version-2.tar.xz", "--delta", "1");
    const docsBefore = ["channels.json", "test/mako/index.json"].map((p) => readFileSync(join(fx.pub, p), "utf8"));

    const { generateKey, storeKey } = await import("../../src/pgp/keys.js");
    const { GpgHome } = await import("../helpers/gpg.js");
    const k = await generateKey({ name: "rotated image signing", email: "si@example.com", bits: 2048 });
    await storeKey(fx.config.gpg_key_path, "image-signing", k.privateArmored, k.publicArmored);
    const gpg = new GpgHome();
    const pubFile = join(fx.inst.base, "new-image-signing.asc");
    writeFileSync(pubFile, k.publicArmored);
    gpg.importKey(pubFile);
    const verifies = (rel: string) => gpg.verify(join(fx.pub, `${rel}.asc`), join(fx.pub, rel)).ok;

    expect(verifies("channels.json")).toBe(false);
    // The content-named index copies devices read (src/tree/versioned-index.ts): the one
    // channels.json names and the superseded ones still kept, one per index change (4).
    const copies = readdirSync(join(fx.pub, "test/mako"))
      .filter((n) => /^index-[0-9a-f]{16}\.json$/.test(n))
      .map((n) => `test/mako/${n}`);
    expect(copies).toHaveLength(4);
    expect(fx.ok("re-sign-indexes")).toBe("I: re-signed 6 documents and 3 files\n");
    for (const rel of [
      "channels.json",
      "test/mako/index.json",
      ...copies,
      "pool/ubports-2.tar.xz",
      "test/mako/version-2.tar.xz",
      "test/mako/version-2.json",
    ]) {
      expect(verifies(rel), rel).toBe(true);
    }
    // The older full image is left alone unless --all; contents never change.
    expect(verifies("pool/ubports-1.tar.xz")).toBe(false);
    expect(["channels.json", "test/mako/index.json"].map((p) => readFileSync(join(fx.pub, p), "utf8"))).toEqual(docsBefore);
    expect(JSON.parse(fx.ok("re-sign-indexes", "--all", "--json"))).toMatchObject({
      documents: ["channels.json", "test/mako/index.json", ...copies.sort()],
      files: 6,
      missing: [],
    });
    for (const rel of ["pool/ubports-1.tar.xz", "test/mako/version-1.tar.xz", "test/mako/version-1.json"])
      expect(verifies(rel), rel).toBe(true);
  });
});
