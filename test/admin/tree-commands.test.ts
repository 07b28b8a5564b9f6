/**
 * The scriptable tree subcommands (`si channel|device|keyring|image`): each prints what it
 * changed (or JSON with --json), and the tree ends up as the Tree API would leave it.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { signedFile, verifyTree } from "../tree/fixture.js";
import { adminFixture, readIndex } from "./fixture.js";

describe("channel and device subcommands", () => {
  it("create, rename, hide, show, alias, re-target, redirect, set keyrings, list and remove", async () => {
    const fx = await adminFixture({ extraConfig: "versioned_index = false\n" }); // the reference's layout
    const channels = () => JSON.parse(readFileSync(join(fx.pub, "channels.json"), "utf8")) as Record<string, Record<string, unknown>>;
    fx.ok("channel", "create", "devel");
    fx.ok("channel", "create", "rc");
    expect(JSON.parse(fx.ok("device", "create", "devel", "mako", "--json"))).toEqual({ channel: "devel", device: "mako", keyring: null });
    fx.ok("device", "create", "rc", "mako");
    await signedFile(fx.signer, join(fx.pub, "devel/mako/device.tar.xz"), "keyring");
    expect(fx.ok("device", "keyring", "devel", "mako", "devel/mako/device.tar.xz")).toBe(
      "I: keyring of devel/mako is /devel/mako/device.tar.xz\n",
    );
    expect(fx.ok("device", "create", "devel", "flo", "--keyring", join(fx.pub, "devel/mako/device.tar.xz"))).toBe(
      `I: created device devel/flo with keyring ${join(fx.pub, "devel/mako/device.tar.xz")}\n`,
    );
    expect(channels().devel).toEqual({
      devices: {
        flo: { index: "/devel/flo/index.json", keyring: { path: "/devel/mako/device.tar.xz", signature: "/devel/mako/device.tar.xz.asc" } },
        mako: {
          index: "/devel/mako/index.json",
          keyring: { path: "/devel/mako/device.tar.xz", signature: "/devel/mako/device.tar.xz.asc" },
        },
      },
    });

    expect(fx.ok("channel", "hide", "rc")).toBe("I: channel rc is hidden\n");
    expect(channels().rc).toMatchObject({ hidden: true });
    expect(fx.ok("channel", "show", "rc")).toBe("I: channel rc is shown\n");
    expect(channels().rc).not.toHaveProperty("hidden");

    expect(fx.ok("channel", "alias", "stable", "devel")).toBe("I: created alias stable of devel\n");
    expect(existsSync(join(fx.pub, "stable/mako/index.json"))).toBe(true);
    expect(fx.ok("channel", "alias", "stable", "rc")).toBe("I: alias stable now follows rc (was devel)\n");
    expect(channels().stable).toEqual({ alias: "rc", devices: { mako: { index: "/stable/mako/index.json" } } });

    expect(fx.ok("device", "redirect", "rc", "flo", "devel")).toBe("I: device rc/flo now follows devel/flo\n");
    expect(fx.ok("device", "list", "rc")).toBe(
      "flo: /devel/flo/index.json (redirect to devel, keyring /devel/mako/device.tar.xz)\nmako: /rc/mako/index.json\n",
    );
    expect(JSON.parse(fx.ok("device", "list", "rc", "--json"))).toMatchObject({
      flo: { redirect: "devel" },
      mako: { index: "/rc/mako/index.json" },
    });

    expect(fx.ok("channel", "rename", "rc", "testing/rc")).toBe(
      "I: renamed channel rc to testing/rc\nW: alias stable still follows rc; re-target it with: si channel alias stable testing/rc\n",
    );
    expect(Object.keys(channels()).sort()).toEqual(["devel", "stable", "testing/rc"]);
    expect(existsSync(join(fx.pub, "testing/rc/mako/index.json"))).toBe(true);
    expect(existsSync(join(fx.pub, "rc"))).toBe(false);

    expect(fx.ok("device", "remove", "devel", "flo")).toBe("I: removed device devel/flo\n");
    // Per-device redirects to a removed device go with it.
    expect(channels()["testing/rc"].devices).toEqual({ mako: { index: "/testing/rc/mako/index.json" } });
    expect(fx.ok("channel", "remove", "devel")).toBe("I: removed channel devel\n");
    expect(existsSync(join(fx.pub, "devel"))).toBe(false);
    expect(fx.ok("channel", "alias", "stable", "testing/rc")).toBe("I: alias stable now follows testing/rc (was rc)\n");
    expect(fx.ok("channel", "list")).toBe("stable (alias of testing/rc): 1 device\ntesting/rc: 1 device\n");
    verifyTree(fx.pub);
  });

  it("creates delta and bootme images by hand, with descriptions in several languages", async () => {
    const fx = await adminFixture();
    fx.ok("channel", "create", "test");
    fx.ok("device", "create", "test", "mako");
    await signedFile(fx.signer, join(fx.pub, "pool/a.tar.xz"), "a");
    await signedFile(fx.signer, join(fx.pub, "pool/b.tar.xz"), "b");
    fx.ok("image", "create", "test", "mako", "1", "pool/a.tar.xz", "--minversion", "1", "--bootme", "--version-detail", "a=1");
    expect(fx.ok("image", "create", "test", "mako", "2", join(fx.pub, "pool/b.tar.xz"), "--delta", "1", "--description", "Second")).toBe(
      "I: created test/mako delta 1→2 (1 file)\n",
    );
    fx.ok("image", "describe", "test", "mako", "2", "Zweite", "--delta", "1", "--lang", "de=Zweite", "--lang", "fr=Seconde");
    const images = readIndex(fx, "test", "mako").images;
    expect(images[0]).toMatchObject({ type: "full", version: 1, bootme: true, minversion: 1, version_detail: "a=1", description: "a=1" });
    expect(images[1]).toMatchObject({
      type: "delta",
      version: 2,
      base: 1,
      description: "Zweite",
      description_de: "Zweite",
      description_fr: "Seconde",
    });
    expect(images[1].files.map((f) => f.path)).toEqual(["/pool/b.tar.xz"]);
    const r = fx.inst.si("image", "describe", "test", "mako", "1", "x", "--lang", "nolang");
    expect([r.status, r.stderr]).toEqual([2, "si: error: argument --lang: expected LANG=TEXT, got 'nolang'\n"]);
    verifyTree(fx.pub);
  });
});
