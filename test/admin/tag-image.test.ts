/**
 * `si tag-image` (server-reference §9.3) through the real CLI: N+1 with N's files and a new
 * version tarball; a delta from N holding only the version and keyring files; the tag
 * replaced (set, rewrite, clear: test_tools' tag cases, seen through the command); N's
 * phased percentage carried over (§13 #9, fixed); the refusals in the reference's order.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readVersionIni } from "../../src/tree/index.js";
import { fingerprint, verifyTree } from "../tree/fixture.js";
import { adminFixture, expectOneLineError, poolTarball, publishFull, readIndex, type AdminFixture } from "./fixture.js";

async function taggedTree(detail: string[]): Promise<AdminFixture> {
  const fx = await adminFixture();
  fx.ok("channel", "create", "rc");
  fx.ok("device", "create", "rc", "mako");
  await poolTarball(fx, "pool/ubports-aaaa.tar.xz", { "system/etc/os-release": "1\n" });
  await poolTarball(fx, "pool/boot-bbbb.tar.xz", { "boot/kernel": "k\n" });
  await poolTarball(fx, "pool/keyring-kkkk.tar.xz", { "archive-master.tar.xz": "keys\n" });
  await publishFull(fx, "rc", "mako", 1, ["pool/ubports-aaaa.tar.xz"], ["ubports=1"]);
  await poolTarball(fx, "pool/ubports-cccc.tar.xz", { "system/etc/os-release": "2\n" });
  await publishFull(fx, "rc", "mako", 2, ["pool/ubports-cccc.tar.xz", "pool/boot-bbbb.tar.xz", "pool/keyring-kkkk.tar.xz"], detail);
  return fx;
}

describe("tag-image", () => {
  it("publishes N+1 with a delta of only the version and keyring files, and keeps N's phased percentage", async () => {
    const fx = await taggedTree(["ubports=2", "device=d1", "keyring=archive-master"]);
    fx.ok("set-phased-percentage", "rc", "mako", "2", "25");
    const out = fx.ok("tag-image", "rc", "mako", "2", "OTA-7");
    expect(out).toContain("I: created rc/mako version 3 (full + 1 delta from 2), tag OTA-7 (was version 2)\n");

    const detail = "ubports=2,device=d1,keyring=archive-master,tag=OTA-7,version=3";
    const images = readIndex(fx, "rc", "mako").images;
    const full3 = images.find((i) => i.type === "full" && i.version === 3)!;
    const delta3 = images.find((i) => i.type === "delta" && i.version === 3)!;
    expect(full3).toMatchObject({ version_detail: detail, description: detail, "phased-percentage": 25 });
    expect(full3.files.map((f) => f.path)).toEqual([
      "/pool/ubports-cccc.tar.xz",
      "/pool/boot-bbbb.tar.xz",
      "/pool/keyring-kkkk.tar.xz",
      "/rc/mako/version-3.tar.xz",
    ]);
    expect(delta3).toMatchObject({ base: 2, version_detail: detail, "phased-percentage": 25 });
    expect(delta3.files.map((f) => [f.order, f.path])).toEqual([
      [0, "/pool/keyring-kkkk.tar.xz"],
      [1, "/rc/mako/version-3.tar.xz"],
    ]);
    // N lost its percentage (only the latest version may be phased).
    expect(images.filter((i) => i.version === 2).every((i) => i["phased-percentage"] === undefined)).toBe(true);
    expect(await readVersionIni(join(fx.pub, "rc/mako/version-3.tar.xz"))).toMatchObject({
      channel: "rc",
      build_number: "3",
      version_detail: detail,
    });
    verifyTree(fx.pub);

    // At 100 % nothing is carried (no key).
    fx.ok("set-phased-percentage", "rc", "mako", "3", "100");
    fx.ok("tag-image", "rc", "mako", "3", "OTA-8");
    expect(
      readIndex(fx, "rc", "mako")
        .images.filter((i) => i.version === 4)
        .map((i) => i["phased-percentage"]),
    ).toEqual([undefined, undefined]);
  });

  it("replaces every tag (also non-adjacent ones), and clears them with an empty tag", async () => {
    const fx = await taggedTree(["device=20150821-736d127", "tag=something", "keyring=archive-master", "tag=different"]);
    fx.ok("tag-image", "rc", "mako", "2", "OTA-x");
    expect(readIndex(fx, "rc", "mako").images.at(-1)!.version_detail).toBe(
      "device=20150821-736d127,keyring=archive-master,tag=OTA-x,version=3",
    );
    fx.ok("tag-image", "rc", "mako", "3", "");
    expect(readIndex(fx, "rc", "mako").images.at(-1)!.version_detail).toBe("device=20150821-736d127,keyring=archive-master,version=4");
  });

  it("refuses in the reference's order, with its messages, and changes nothing", async () => {
    const fx = await taggedTree(["ubports=2"]);
    fx.ok("device", "create", "rc", "flo");
    fx.ok("channel", "alias", "stable", "rc");
    fx.ok("channel", "redirect", "old", "rc");
    fx.ok("channel", "create", "pd");
    fx.ok("device", "redirect", "pd", "mako", "rc");
    fx.ok("device", "create", "rc", "hammerhead");
    await publishFull(fx, "rc", "hammerhead", 1, ["pool/ubports-aaaa.tar.xz"], ["u=1"]);
    fx.ok("image", "remove", "rc", "hammerhead", "1");
    await publishFull(fx, "rc", "hammerhead", 2, ["pool/ubports-cccc.tar.xz"], ["u=2"]);
    fx.ok("image", "create", "rc", "hammerhead", "3", "pool/ubports-aaaa.tar.xz", "--delta", "2");
    const before = fingerprint(fx.pub);
    const cases: [string[], string][] = [
      [["nope", "mako", "2", "T"], "Invalid channel: nope"],
      [["rc", "nexus", "2", "T"], "Invalid device for channel: nexus"],
      [["stable", "mako", "2", "T"], "Channel is an alias."],
      [["old", "mako", "2", "T"], "Channel is a redirect."],
      [["pd", "mako", "2", "T"], "Target device is a redirect. Use original channel rc instead."],
      [["rc", "mako", "2", "a,b"], "Image tag cannot include the character ','."],
      [["rc", "flo", "1", "T"], "No images in selected channel/device."],
      [["rc", "mako", "1", "T"], "You can only tag the latest image."],
      [["rc", "hammerhead", "3", "T"], "Can't find version: 3"],
      [["rc", "mako", "two", "T"], "argument VERSION: invalid int value: 'two'"],
    ];
    for (const [args, message] of cases) {
      const r = fx.inst.si("tag-image", ...args);
      expect([r.status, r.stdout], `tag-image ${args.join(" ")}: ${r.stderr}`).toEqual([2, ""]);
      expectOneLineError(r, message);
    }
    expect(fingerprint(fx.pub)).toEqual(before);
  });
});
