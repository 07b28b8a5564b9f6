/**
 * The demo's build farm: two cdimage-style trees under the demo's own directory
 * (`state/demo-farm/rootfs/<build>/` and `state/demo-farm/device/<build>/`, each build with
 * its SHA256SUMS), which the cdimage-custom and cdimage-device-raw generators read
 * (server-reference §5.4.3, §5.4.4). Nothing runs: an import days later works offline, and
 * `si demo --next-build` only adds a directory before importing.
 *
 * Builds are numbered 0001, 0002, ...: the generators take the newest version by string order.
 * A build is written into `pending/` (which they skip, §5.3) and renamed into place, so an
 * import never sees half a build.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RecoveryKeyring } from "../archive/recovery-keyring.js";
import { demoRecoveryImage } from "./recovery.js";
import { SAMPLE_MTIME, deviceMembers, rootfsMembers, writeTarGz } from "./sample.js";

/** The cdimage series named in the input file names. */
export const DEMO_SERIES = "demo";
/** What cdimage-custom / cdimage-device-raw (product=touch) look for, for a device mapped to armhf. */
export const ROOTFS_FILE = `${DEMO_SERIES}-preinstalled-touch-armhf.custom.tar.gz`;
export const DEVICE_FILE = `${DEMO_SERIES}-preinstalled-touch-armhf.device.tar.gz`;

export interface Farm {
  rootfs: string;
  device: string;
}

export function demoFarm(root: string): Farm {
  const dir = join(root, "state/demo-farm");
  return { rootfs: join(dir, "rootfs"), device: join(dir, "device") };
}

const buildName = (n: number) => String(n).padStart(4, "0");

/** The newest complete build number in a farm tree (0 when it has none). */
export function latestBuild(tree: string): number {
  if (!existsSync(tree)) return 0;
  const builds = readdirSync(tree)
    .filter((d) => /^\d{4,}$/.test(d) && existsSync(join(tree, d, "SHA256SUMS")))
    .map(Number);
  return Math.max(0, ...builds);
}

async function addBuild(tree: string, n: number, file: string, write: (path: string) => Promise<string>): Promise<void> {
  const pending = join(tree, "pending");
  const final = join(tree, buildName(n));
  rmSync(pending, { recursive: true, force: true });
  mkdirSync(pending, { recursive: true });
  const sha = await write(join(pending, file));
  writeFileSync(join(pending, "SHA256SUMS"), `${sha} *${file}\n`);
  // The sample is deterministic: a build left by an interrupted first run is the same build.
  rmSync(final, { recursive: true, force: true });
  renameSync(pending, final);
}

/** Adds rootfs build `n` (version n of the sample rootfs). */
export function addRootfsBuild(farm: Farm, n: number): Promise<void> {
  return addBuild(farm.rootfs, n, ROOTFS_FILE, (p) => writeTarGz(p, rootfsMembers(n)));
}

/** Adds device build `n`: the device tarball, its recovery carrying `archiveMaster`. */
export async function addDeviceBuild(farm: Farm, n: number, archiveMaster: RecoveryKeyring): Promise<void> {
  const recovery = await demoRecoveryImage(archiveMaster, SAMPLE_MTIME);
  await addBuild(farm.device, n, DEVICE_FILE, (p) => writeTarGz(p, deviceMembers(recovery)));
}

/** The channel's `file_*` lines that read this farm. */
export function farmFileLines(farm: Farm): string {
  return [
    "files = rootfs, device, keyring, version",
    `file_rootfs = cdimage-custom;${farm.rootfs};${DEMO_SERIES}`,
    `file_device = cdimage-device-raw;${farm.device};${DEMO_SERIES};product=touch`,
    "file_keyring = keyring;archive-master",
    "file_version = version",
  ].join("\n");
}
