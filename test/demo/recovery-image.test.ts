/**
 * The demo's sample recovery.img (issue 15 item 5) on its own: an Android boot image that
 * AOSP's mkbootimg would write byte for byte from the same kernel, ramdisk and arguments, whose
 * gzip'd cpio ramdisk carries the archive-master keyring where the recovery reads it, and the
 * same bytes every run (the device tarball is content-addressed in the pool: a recovery that
 * changed on every first run would change its name).
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { bootImageId, parseBootImage } from "../../src/archive/bootimg.js";
import { normalName, parseCpio } from "../../src/archive/cpio.js";
import { demoRecoveryImage } from "../../src/demo/recovery.js";

const keyring = {
  name: "archive-master",
  tarball: Buffer.from("pretend archive-master.tar.xz bytes\n"),
  signature: Buffer.from("-----BEGIN PGP SIGNATURE-----\n...\n"),
};

describe("demoRecoveryImage", () => {
  it("is a v0 Android boot image whose ramdisk holds etc/system-image/archive-master.tar.xz(.asc)", async () => {
    const img = parseBootImage(await demoRecoveryImage(keyring, 1767225600), "recovery.img");
    expect(img.version).toBe(0);
    expect(img.pageSize).toBe(2048);
    expect(img.name).toBe("demo-recovery");
    expect(img.id).toEqual(bootImageId(img));
    const files = new Map(parseCpio(gunzipSync(img.ramdisk), "ramdisk").entries.map((e) => [normalName(e.name), e]));
    expect(files.get("etc/system-image/archive-master.tar.xz")?.data).toEqual(keyring.tarball);
    expect(files.get("etc/system-image/archive-master.tar.xz.asc")?.data).toEqual(keyring.signature);
    expect(files.get("etc/system-image/archive-master.tar.xz")?.mode).toBe(0o100644);
    expect(files.has("init")).toBe(true);
  });

  it("is what mkbootimg writes from its kernel, ramdisk and arguments", async () => {
    const dir = mkdtempSync(join(tmpdir(), "si-demo-recovery-"));
    try {
      const ours = await demoRecoveryImage(keyring, 1767225600);
      const img = parseBootImage(ours, "recovery.img");
      writeFileSync(join(dir, "kernel"), img.kernel);
      writeFileSync(join(dir, "ramdisk"), img.ramdisk);
      execFileSync("mkbootimg", [
        "--kernel",
        join(dir, "kernel"),
        "--ramdisk",
        join(dir, "ramdisk"),
        "--base",
        "0x10000000",
        "--pagesize",
        "2048",
        "--cmdline",
        img.cmdline,
        "--board",
        img.name,
        "-o",
        join(dir, "mk.img"),
      ]);
      expect(readFileSync(join(dir, "mk.img")).equals(ours)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is the same bytes for the same keyring and mtime", async () => {
    expect((await demoRecoveryImage(keyring, 1767225600)).equals(await demoRecoveryImage(keyring, 1767225600))).toBe(true);
  });
});
