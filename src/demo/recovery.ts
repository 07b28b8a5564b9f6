/**
 * The demo device's `partitions/recovery.img`: an Android boot image (header v0, as the
 * Ubuntu Touch devices' recoveries are) whose ramdisk carries the demo's archive-master
 * keyring at etc/system-image/archive-master.tar.xz(.asc), where the recovery's upgrader
 * looks for it. `ubuntu-device-flash touch --bootstrap` takes this file out of the device
 * tarball and flashes it (client-protocol §10.2); a recovery that trusts another archive
 * master would refuse the image-master keyring it is then handed.
 *
 * The keyring goes in through the recovery keyring swap (server-reference §8.5,
 * src/archive/recovery-keyring.ts), the same code that puts this server's keyring into a
 * mirrored device tarball. The kernel is a placeholder: the image is a sample for the flashing
 * flow and for parsers, it does not boot.
 */
import { buildBootImage, type BootImage } from "../archive/bootimg.js";
import { compressBuffer } from "../archive/compression.js";
import { buildCpio, S_IFDIR, S_IFREG, type CpioEntry } from "../archive/cpio.js";
import { swapRecoveryKeyring, type RecoveryKeyring } from "../archive/recovery-keyring.js";

/** mkbootimg's load addresses for --base 0x10000000 (its default offsets). */
const BASE = 0x10000000;
const PAGE_SIZE = 2048;

function ramdiskEntries(mtime: number): CpioEntry[] {
  let ino = 300000;
  const entry = (name: string, mode: number, data = ""): CpioEntry => ({
    name,
    ino: ino++,
    mode,
    uid: 0,
    gid: 0,
    nlink: mode & S_IFDIR ? 2 : 1,
    mtime,
    devMajor: 0,
    devMinor: 0,
    rdevMajor: 0,
    rdevMinor: 0,
    data: Buffer.from(data),
  });
  return [
    entry("etc", S_IFDIR | 0o755),
    entry("etc/system-image", S_IFDIR | 0o755),
    entry(
      "init",
      S_IFREG | 0o750,
      "#!/bin/sh\necho 'Demo OS sample recovery: it carries the archive-master keyring, its kernel does not boot.'\n",
    ),
    entry("sbin", S_IFDIR | 0o750),
    entry("default.prop", S_IFREG | 0o644, "ro.product.device=generic\nro.build.characteristics=demo-recovery\n"),
  ];
}

/** The recovery image with `archiveMaster` (tarball + .asc) in its ramdisk. */
export async function demoRecoveryImage(archiveMaster: RecoveryKeyring, mtime: number): Promise<Buffer> {
  const ramdisk = await compressBuffer(
    buildCpio({ magic: "070701", entries: ramdiskEntries(mtime), padTo: 512, rest: Buffer.alloc(0) }),
    "gzip",
    "demo recovery ramdisk",
  );
  const base: BootImage = {
    version: 0,
    headerVersionField: 0,
    pageSize: PAGE_SIZE,
    kernelAddr: BASE + 0x00008000,
    ramdiskAddr: BASE + 0x01000000,
    // No second stage: address 0, as AOSP's mkbootimg writes it then.
    secondAddr: 0,
    tagsAddr: BASE + 0x00000100,
    osVersion: 0,
    name: "demo-recovery",
    cmdline: "console=tty0 androidboot.hardware=generic",
    extraCmdline: "",
    id: Buffer.alloc(32),
    kernel: Buffer.from("DEMO-KERNEL (placeholder: this sample recovery does not boot)\n".repeat(64)),
    ramdisk,
    second: Buffer.alloc(0),
    recoveryDtbo: Buffer.alloc(0),
    recoveryDtboOffset: 0n,
    headerSize: 0,
    dtb: Buffer.alloc(0),
    dtbAddr: 0n,
    qcomDt: null,
    tail: Buffer.alloc(0),
    headerPage: Buffer.alloc(PAGE_SIZE),
  };
  const img = buildBootImage(base, "demo recovery.img");
  return swapRecoveryKeyring(img, archiveMaster, { label: "demo recovery.img", mtime });
}
