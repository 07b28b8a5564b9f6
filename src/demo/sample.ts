/**
 * The demo's sample inputs, built at run time with our own GNU tar writer: a rootfs-like
 * image in any number of versions (each build changes a few files, so every build has a
 * delta from the one before) and a device tarball, gzip'd as a cdimage tree holds them
 * (src/demo/farm.ts lays them out for the cdimage-custom and cdimage-device-raw generators).
 */
import { createWriteStream } from "node:fs";
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { GnuTarWriter } from "../archive/tar/index.js";
import type { TarHeader } from "../archive/tar/types.js";

type Member = Omit<TarHeader, "uid" | "gid" | "uname" | "gname" | "mtime" | "size" | "mode"> & {
  mode?: number;
  content?: string | Buffer;
};

/** The fixed mtime of every member: only what really changed goes into a delta. */
export const SAMPLE_MTIME = Date.UTC(2026, 0, 1) / 1000;

/**
 * Incompressible filler, the same bytes every run. The client ranks upgrade paths by size in
 * whole MiB (client-protocol §6.2): with tiny images, "full 1 + delta 2" ties with "full 2"
 * and wins, and the recovery then skips the delta's removals (§8.3). Real images are large:
 * 1.5 MiB kept in every version and 1.5 MiB dropped in v2 make the demo behave like them
 * (build 0 takes the newest full; build N-1 takes the delta, which holds neither filler).
 */
function filler(seed: string, bytes: number): Buffer {
  const out: Buffer[] = [];
  let block = createHash("sha512").update(seed).digest();
  for (let n = 0; n < bytes; n += 64) {
    out.push(block);
    block = createHash("sha512").update(block).digest();
  }
  return Buffer.concat(out).subarray(0, bytes);
}

/** Version 1 and 2 are what the first run imports; 3 and later come from `si demo --next-build`. */
export function rootfsMembers(version: number): Member[] {
  const m: Member[] = [
    { name: "system", type: "directory", mode: 0o755 },
    { name: "system/etc", type: "directory", mode: 0o755 },
    { name: "system/etc/os-release", type: "file", content: `NAME="Demo OS"\nVERSION_ID="${version}"\nPRETTY_NAME="Demo OS ${version}"\n` },
    { name: "system/etc/hostname", type: "file", content: "demo\n" },
    { name: "system/usr", type: "directory", mode: 0o755 },
    { name: "system/usr/bin", type: "directory", mode: 0o755 },
    { name: "system/usr/bin/hello", type: "file", mode: 0o755, content: `#!/bin/sh\necho "Hello from Demo OS ${version}"\n` },
    { name: "system/usr/bin/hi", type: "link", linkname: "system/usr/bin/hello" },
    { name: "system/usr/lib", type: "directory", mode: 0o755 },
    { name: "system/usr/share/doc/demo", type: "directory", mode: 0o755 },
    { name: "system/usr/share/doc/demo/README", type: "symlink", linkname: `../../../lib/demo/README.v${version}` },
  ];
  m.push({ name: "system/usr/lib/demo", type: "directory", mode: 0o755 });
  m.push({ name: `system/usr/lib/demo/README.v${version}`, type: "file", content: `Demo OS release ${version}\n` });
  for (let i = 0; i < 60; i++) {
    if (version >= 2 && i % 10 === 3) continue; // removed in v2
    const changed = version >= 2 && i % 7 === 0;
    m.push({
      name: `system/usr/lib/demo/lib${i}.so`,
      type: "file",
      content: `library ${i}${changed ? ` (v${version})` : ""}\n`.repeat(20 + i),
    });
  }
  if (version >= 2) m.push({ name: "system/usr/lib/demo/new-in-v2.so", type: "file", content: "added in version 2\n" });
  m.push({ name: "system/usr/share/demo-firmware.bin", type: "file", content: filler("demo firmware", 1536 * 1024) });
  if (version === 1) m.push({ name: "system/usr/share/demo-firmware-old.bin", type: "file", content: filler("old firmware", 1536 * 1024) });
  return m;
}

/**
 * The device tarball: a boot image, the recovery image ubuntu-device-flash --bootstrap flashes
 * (client-protocol §10.2: it takes `partitions/recovery.img` out of the device tarball), and a
 * kernel module.
 */
export function deviceMembers(recoveryImg: Buffer): Member[] {
  return [
    { name: "partitions", type: "directory", mode: 0o755 },
    { name: "partitions/boot.img", type: "file", content: "DEMO-BOOT-IMAGE\n".repeat(256) },
    { name: "partitions/recovery.img", type: "file", content: recoveryImg },
    { name: "system", type: "directory", mode: 0o755 },
    { name: "system/lib", type: "directory", mode: 0o755 },
    { name: "system/lib/modules", type: "directory", mode: 0o755 },
    { name: "system/lib/modules/demo.ko", type: "file", content: "demo kernel module\n" },
  ];
}

/** Writes `members` as a gzip'd GNU tar; returns the SHA-256 of the file written. */
export async function writeTarGz(path: string, members: Member[]): Promise<string> {
  const gzip = createGzip({ level: 9 });
  const sha = createHash("sha256");
  gzip.on("data", (chunk: Buffer) => sha.update(chunk));
  const done = pipeline(gzip, createWriteStream(path));
  const tar = new GnuTarWriter(gzip);
  for (const { content: text, ...rest } of members) {
    const content = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    await tar.add(
      { ...rest, mode: rest.mode ?? 0o644, uid: 0, gid: 0, uname: "root", gname: "root", mtime: SAMPLE_MTIME, size: content?.length ?? 0 },
      content,
    );
  }
  await tar.finish();
  await done;
  return sha.digest("hex");
}
