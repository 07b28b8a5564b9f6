/**
 * Byte-for-byte comparisons with files written by Python's json.dumps(sort_keys=True,
 * indent=4, separators=(",", ": ")) (test/golden/, made by the reference's own serializer
 * rules): channels.json, index.json (fixed clock), a version tarball's channel.ini and its
 * version-N.json sidecar.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { writeVersionSidecar, writeVersionTarball } from "../../src/tree/index.js";
import { signedFile, treeFixture, verifyTree, REFERENCE_LAYOUT } from "./fixture.js";

const GOLDEN = resolve(import.meta.dirname, "../golden");
const golden = (name: string) => readFileSync(join(GOLDEN, name), "utf8");
const FIXED = new Date(Date.UTC(2026, 10, 29, 5, 44, 37));

describe("golden documents", () => {
  it("channels.json: a channel, an alias and a redirect (server-reference §2.2)", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const { tree, pub } = fx;
    await tree.create_channel("devel");
    await tree.create_device("devel", "mako");
    await tree.create_channel_alias("stable", "devel");
    await tree.create_channel_redirect("old-devel", "devel");
    expect(readFileSync(join(pub, "channels.json"), "utf8")).toBe(golden("channels.json"));
    verifyTree(pub);
  });

  it("index.json: fulls, a delta, phasing, translations, non-ASCII text, fixed generated_at", async () => {
    const fx = await treeFixture({ ...REFERENCE_LAYOUT, clock: () => FIXED });
    const { tree, pub, signer } = fx;
    const content: Record<string, string> = {
      "pool/ubports-1111.tar.xz": "rootfs-1\n",
      "pool/ubports-2222.tar.xz": "rootfs-2\n",
      "pool/ubports-2222.delta-ubports-1111.tar.xz": "delta\n",
      "pool/keyring-abcd.tar.xz": "keyring\n",
    };
    for (const [p, c] of Object.entries(content)) await signedFile(signer, join(pub, p), c);
    await tree.create_channel("devel");
    await tree.create_device("devel", "mako");
    const dev = await tree.get_device("devel", "mako");
    const vd1 = "tag=2026-11-29,ubports=1111,keyring=archive-master,version=1";
    const vd2 = "tag=2026-11-29/2,ubports=2222,keyring=archive-master,version=2";
    await dev.create_image("full", 1, vd1, ["pool/ubports-1111.tar.xz", "pool/keyring-abcd.tar.xz"], { version_detail: vd1 });
    await dev.create_image("full", 2, "x", [join(pub, "pool/ubports-2222.tar.xz"), "/pool/keyring-abcd.tar.xz"], {
      versionDetail: vd2,
      minversion: 1,
    });
    await dev.create_image(
      "delta",
      2,
      vd2,
      ["pool/ubports-2222.delta-ubports-1111.tar.xz", "pool/keyring-abcd.tar.xz"],
      1,
      true,
      null,
      vd2,
    );
    await dev.set_phased_percentage(2, 50);
    await dev.set_description("full", 2, "Zweite Version \u2013 \u00fcber alles \u{1F600}", { fr: "essai" });
    expect(readFileSync(join(pub, "devel/mako/index.json"), "utf8")).toBe(golden("index.json"));
    verifyTree(pub);
  });

  it("channel.ini and version-N.json of a version tarball (§5.5, §2.5)", async () => {
    const fx = await treeFixture(REFERENCE_LAYOUT);
    const config = { ...fx.config, public_https_port: "0" };
    const dir = mkdtempSync(join(tmpdir(), "si-golden-"));
    const tarball = join(dir, "version-2.tar.xz");
    await writeVersionTarball(
      tarball,
      config,
      {
        channel: "stable",
        device: "mako",
        version: 2,
        channelTarget: "devel",
        versionDetail: "tag=2026-11-29/2,ubports=20220102-1,version=2",
      },
      { signer: fx.signer },
    );
    const ini = execFileSync("tar", ["-xJOf", tarball, "system/etc/system-image/channel.ini"], { encoding: "utf8" });
    expect(ini).toBe(golden("channel.ini"));
    const sidecar = await writeVersionSidecar(
      join(dir, "version-2.tar.xz"),
      { version: 2, channel: "rc", device: "mako", versionDetail: "ubports=20220102-1,keyring=archive-master,tag=OTA-2,version=2" },
      fx.signer,
    );
    expect(sidecar).toBe(join(dir, "version-2.json"));
    expect(readFileSync(sidecar, "utf8")).toBe(golden("version-2.json"));
    expect(verifyTree(dir)).toBe(2);
  });
});
