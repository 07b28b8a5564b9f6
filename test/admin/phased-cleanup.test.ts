/**
 * `si set-phased-percentage` (server-reference §9.4) and `si cleanup-tree` (§9.9) through
 * the real CLI. Fixes kept under test: set-phased-percentage runs without -v (§13 #8), an
 * unknown or older version is a one-line error (exit 1), and alias copies follow at once.
 */
import { mkdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprint, verifyTree } from "../tree/fixture.js";
import { adminFixture, expectOneLineError, poolTarball, publishFull, readIndex } from "./fixture.js";

describe("set-phased-percentage", () => {
  it("phases the latest image (and its alias copies), refuses in the reference's order", async () => {
    const fx = await adminFixture();
    fx.ok("channel", "create", "rc");
    fx.ok("device", "create", "rc", "mako");
    await poolTarball(fx, "pool/ubports-1.tar.xz", { "system/x": "1\n" });
    await poolTarball(fx, "pool/ubports-2.tar.xz", { "system/x": "2\n" });
    await publishFull(fx, "rc", "mako", 1, ["pool/ubports-1.tar.xz"], ["u=1"]);
    await publishFull(fx, "rc", "mako", 2, ["pool/ubports-2.tar.xz"], ["u=2"]);
    fx.ok("image", "create", "rc", "mako", "2", "pool/ubports-2.tar.xz", "rc/mako/version-2.tar.xz", "--delta", "1");
    fx.ok("channel", "alias", "stable", "rc");
    fx.ok("channel", "redirect", "old", "rc");
    fx.ok("channel", "create", "pd");
    fx.ok("device", "redirect", "pd", "mako", "rc");

    expect(fx.ok("set-phased-percentage", "rc", "mako", "2", "15")).toBe(
      "I: set phased percentage of rc/mako version 2 to 15% (was 100%)\n",
    );
    const phased = (c: string) => readIndex(fx, c, "mako").images.map((i) => [i.type, i.version, i["phased-percentage"] ?? 100]);
    expect(phased("rc")).toEqual([
      ["full", 1, 100],
      ["full", 2, 15],
      ["delta", 2, 15],
    ]);
    expect(phased("stable")).toEqual(phased("rc"));
    expect(JSON.parse(fx.ok("set-phased-percentage", "rc", "mako", "2", "100", "--json"))).toEqual({
      channel: "rc",
      device: "mako",
      version: 2,
      percentage: 100,
      previous: 15,
    });
    expect(readIndex(fx, "rc", "mako").images.some((i) => "phased-percentage" in i)).toBe(false);
    expect(readIndex(fx, "stable", "mako").images.some((i) => "phased-percentage" in i)).toBe(false);
    verifyTree(fx.pub);

    const before = fingerprint(fx.pub);
    const cases: [string[], number, string][] = [
      [["nope", "mako", "2", "10"], 2, "Invalid channel: nope"],
      [["rc", "nexus", "2", "10"], 2, "Invalid device for source channel: nexus"],
      [["rc", "mako", "2", "101"], 2, "Invalid value: 101"],
      [["stable", "mako", "2", "-1"], 2, "Invalid value: -1"],
      [["stable", "mako", "2", "10"], 2, "Channel is an alias."],
      [["old", "mako", "2", "10"], 2, "Channel is a redirect."],
      [["pd", "mako", "2", "10"], 2, "Target device is a redirect. Use original channel rc instead."],
      [["rc", "mako", "2", "ten"], 2, "argument PERCENTAGE: invalid int value: 'ten'"],
      [["rc", "mako", "1", "10"], 1, "Cannot set the phased percentage of rc/mako version 1: only the latest version (2) can be phased"],
      [["rc", "mako", "3", "10"], 1, "Cannot set the phased percentage of rc/mako version 3: there is no such version (versions: 1, 2)"],
    ];
    for (const [args, status, message] of cases) {
      const r = fx.inst.si("set-phased-percentage", ...args);
      expect([r.status, r.stdout], `set-phased-percentage ${args.join(" ")}: ${r.stderr}`).toEqual([status, ""]);
      expectOneLineError(r, message);
    }
    expect(fingerprint(fx.pub)).toEqual(before);
  });
});

describe("cleanup-tree", () => {
  it("expires configured channels, deletes orphans and reports both", async () => {
    const fx = await adminFixture({ extraConfig: "channels = devel\n[channel_devel]\nfullcount = 2\n" });
    fx.ok("channel", "create", "devel");
    fx.ok("device", "create", "devel", "mako");
    fx.ok("channel", "create", "manual");
    fx.ok("device", "create", "manual", "mako");
    for (const v of [1, 2, 3]) {
      await poolTarball(fx, `pool/ubports-${v}.tar.xz`, { "system/x": `${v}\n` });
      await publishFull(fx, "devel", "mako", v, [`pool/ubports-${v}.tar.xz`], [`u=${v}`]);
      await publishFull(fx, "manual", "mako", v, [`pool/ubports-${v}.tar.xz`], [`u=${v}`]);
    }
    fx.ok("image", "create", "devel", "mako", "3", "pool/ubports-3.tar.xz", "devel/mako/version-3.tar.xz", "--delta", "1");
    fx.ok("image", "create", "devel", "mako", "3", "pool/ubports-3.tar.xz", "devel/mako/version-3.tar.xz", "--delta", "2");
    writeFileSync(join(fx.pub, "robots.txt"), "User-agent: *\n");
    mkdirSync(join(fx.pub, "empty"));

    const out = fx.ok("cleanup-tree");
    expect(out.split("\n").filter(Boolean)).toEqual([
      "I: expired devel/mako: full 1, delta 1→3",
      "I: removed devel/mako/version-1.json",
      "I: removed devel/mako/version-1.json.asc",
      "I: removed devel/mako/version-1.tar.xz",
      "I: removed devel/mako/version-1.tar.xz.asc",
      "I: removed empty",
      "I: removed robots.txt",
    ]);
    expect(readIndex(fx, "devel", "mako").images.map((i) => [i.type, i.version, i.base ?? null])).toEqual([
      ["full", 2, null],
      ["full", 3, null],
      ["delta", 3, 2],
    ]);
    // Not configured: not expired; its files keep pool/ubports-1 alive.
    expect(readIndex(fx, "manual", "mako").images).toHaveLength(3);
    expect(existsSync(join(fx.pub, "pool/ubports-1.tar.xz"))).toBe(true);
    expect(fx.ok("cleanup-tree")).toBe("I: nothing to clean up\n");
    verifyTree(fx.pub);
  });
});
