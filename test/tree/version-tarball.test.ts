/**
 * Ports of test_tools' version tarball cases (server-reference §10.5): the exact channel.ini
 * for three cases, the build file, the system-image 3.0 symlinks, config.d 0775 and mtimes
 * after extraction with GNU tar; plus the compressed, signed form devices download.
 */
import { execFileSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Config } from "../../src/config/types.js";
import { readVersionIni, writeVersionTarball, writeVersionTarFile } from "../../src/tree/index.js";
import { treeFixture, verifyTree } from "./fixture.js";

const config = { public_fqdn: "system-image.example.net", public_http_port: "880", public_https_port: "8443" } as Config;
const scratch = () => mkdtempSync(join(tmpdir(), "si-version-"));
const member = (tar: string, name: string) => execFileSync("tar", ["-xOf", tar, name], { encoding: "utf8" });

describe("generate_version_tarball (test_generate_version_tarball)", () => {
  it("writes the build file and the exact channel.ini, plain, with ports 0, and for an alias", async () => {
    const dir = scratch();
    const spec = { channel: "testing", device: "test", version: "1.2.3.4", buildPath: "a/b/version", channelPath: "a/b/channel" };
    let tar = join(dir, "plain.tar");
    await writeVersionTarFile(tar, config, spec);
    expect(member(tar, "a/b/version")).toBe("1.2.3.4\n");
    expect(member(tar, "a/b/channel")).toBe(
      "[service]\nbase: system-image.example.net\nhttp_port: 880\nhttps_port: 8443\nchannel: testing\ndevice: test\nbuild_number: 1.2.3.4\n",
    );

    // Ports 0, as a number (the reference's test) or as read from the file ("0"): disabled.
    for (const zero of [0, "0"]) {
      tar = join(dir, `disabled-${typeof zero}.tar`);
      await writeVersionTarFile(tar, { ...config, public_http_port: zero, public_https_port: zero } as unknown as Config, spec);
      expect(member(tar, "a/b/version")).toBe("1.2.3.4\n");
      expect(member(tar, "a/b/channel")).toBe(
        "[service]\nbase: system-image.example.net\nhttp_port: disabled\nhttps_port: disabled\nchannel: testing\ndevice: test\nbuild_number: 1.2.3.4\n",
      );
    }

    tar = join(dir, "alias.tar");
    await writeVersionTarFile(tar, config, { ...spec, versionDetail: "abcdef", channelTarget: "origin" });
    expect(member(tar, "a/b/channel")).toBe(
      "[service]\nbase: system-image.example.net\nhttp_port: 880\nhttps_port: 8443\nchannel: testing\ndevice: test\nbuild_number: 1.2.3.4\nchannel_target: origin\nversion_detail: abcdef\n",
    );
  });

  it("sizes channel.ini in bytes and writes GNU headers, members in order", async () => {
    const dir = scratch();
    const tar = join(dir, "v.tar");
    await writeVersionTarFile(tar, config, { channel: "t\u00e9st", device: "d", version: 7, versionDetail: "tag=\u00fc" });
    expect(member(tar, "system/etc/system-image/channel.ini")).toContain("channel: t\u00e9st\n");
    const listing = execFileSync("tar", ["-tf", tar], { encoding: "utf8" }).trim().split("\n");
    expect(listing).toEqual([
      "system/etc/ubuntu-build",
      "system/etc/system-image/channel.ini",
      "system/etc/system-image/config.d/",
      "system/etc/system-image/config.d/00_default.ini",
      "system/etc/system-image/config.d/01_channel.ini",
    ]);
    // GNU magic "ustar  \0" (busybox tar in the recovery cannot read pax headers).
    expect(readFileSync(tar).subarray(257, 265).toString("latin1")).toBe("ustar  \0");
  });

  it("refuses to write without public_fqdn and ports, naming what is missing", async () => {
    const dir = scratch();
    await expect(
      writeVersionTarFile(join(dir, "x.tar"), { path: "/etc/config" }, { channel: "c", device: "d", version: 1 }),
    ).rejects.toThrow("public_fqdn, public_http_port, public_https_port not set in [global] of /etc/config");
  });
});

describe("system-image 3.0 members (test_system_image_30_*)", () => {
  async function extracted(): Promise<string> {
    const dir = scratch();
    const tar = join(dir, "version.tar");
    await writeVersionTarFile(tar, config, { channel: "testing", device: "test", version: "1.2.3.4" });
    const out = join(dir, "out");
    mkdirSync(out);
    // -p: keep the stored modes, as the recovery (root) does.
    execFileSync("tar", ["-xpf", tar, "-C", out]);
    return join(out, "system/etc/system-image/config.d");
  }

  it("links config.d/00_default.ini -> ../client.ini and 01_channel.ini -> ../channel.ini", async () => {
    const configD = await extracted();
    expect(lstatSync(join(configD, "00_default.ini")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(configD, "00_default.ini"))).toBe("../client.ini");
    expect(lstatSync(join(configD, "01_channel.ini")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(configD, "01_channel.ini"))).toBe("../channel.ini");
  });

  it("extracts config.d with mode 0775 (LP #1454447)", async () => {
    expect(statSync(await extracted()).mode & 0o7777).toBe(0o775);
  });

  it("gives config.d and the links real mtimes (LP #1558190)", async () => {
    const configD = await extracted();
    const startOf2020 = Date.UTC(2020, 0, 1);
    expect(statSync(configD).mtimeMs).toBeGreaterThan(startOf2020);
    for (const f of ["00_default.ini", "01_channel.ini"]) expect(lstatSync(join(configD, f)).mtimeMs).toBeGreaterThan(startOf2020);
  });
});

describe("writeVersionTarball", () => {
  it("writes xz + a signature that gpg accepts, and reports the checksum and size of the file", async () => {
    const fx = await treeFixture();
    const path = join(fx.pub, "devel/mako/version-3.tar.xz");
    mkdirSync(join(fx.pub, "devel/mako"), { recursive: true });
    const w = await writeVersionTarball(path, fx.config, { channel: "devel", device: "mako", version: 3 }, { signer: fx.signer });
    const bytes = readFileSync(path);
    expect(w.size).toBe(bytes.length);
    const { createHash } = await import("node:crypto");
    expect(w.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(execFileSync("xz", ["-t", path]).length).toBe(0);
    expect(await readVersionIni(path)).toEqual({
      base: "system-image.example.net",
      http_port: "880",
      https_port: "8443",
      channel: "devel",
      device: "mako",
      build_number: "3",
    });
    expect(verifyTree(fx.pub)).toBe(1);
  });
});
