/**
 * The demo's sample inputs, built at run time with our own GNU tar writer: a rootfs-like
 * image in two versions (so devices on build 0 and build 1 both have an upgrade) and a
 * device tarball, shaped like what a build farm hands to the `http` generator.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { GnuTarWriter } from "../archive/tar/index.js";
import type { TarHeader } from "../archive/tar/types.js";
import { defaultCodec } from "../io/xz.js";

type Member = Omit<TarHeader, "uid" | "gid" | "uname" | "gname" | "mtime" | "size" | "mode"> & {
  mode?: number;
  content?: string;
  /** Content is binary held as latin1 text. */
  latin1?: boolean;
};

/**
 * Incompressible filler, the same bytes every run. The client ranks upgrade paths by size in
 * whole MiB (client-protocol §6.2): with tiny images, "full 1 + delta 2" ties with "full 2"
 * and wins, and the recovery then skips the delta's removals (§8.3). Real images are large:
 * 1.5 MiB kept in both versions and 1.5 MiB dropped in v2 make the demo behave like them
 * (build 0 takes full 2; build 1 takes the delta, which holds neither filler).
 */
function filler(seed: string, bytes: number): string {
  const out: string[] = [];
  let block = createHash("sha512").update(seed).digest();
  for (let n = 0; n < bytes; n += 64) {
    out.push(block.toString("latin1"));
    block = createHash("sha512").update(block).digest();
  }
  return out.join("").slice(0, bytes);
}

function rootfs(version: 1 | 2): Member[] {
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
    if (version === 2 && i % 10 === 3) continue; // removed in v2
    const changed = version === 2 && i % 7 === 0;
    m.push({ name: `system/usr/lib/demo/lib${i}.so`, type: "file", content: `library ${i}${changed ? " (v2)" : ""}\n`.repeat(20 + i) });
  }
  if (version === 2) m.push({ name: "system/usr/lib/demo/new-in-v2.so", type: "file", content: "added in version 2\n" });
  m.push({ name: "system/usr/share/demo-firmware.bin", type: "file", content: filler("demo firmware", 1536 * 1024), latin1: true });
  if (version === 1) m.push({ name: "system/usr/share/demo-firmware-old.bin", type: "file", content: filler("old firmware", 1536 * 1024), latin1: true });
  return m;
}

function device(): Member[] {
  return [
    { name: "partitions", type: "directory", mode: 0o755 },
    { name: "partitions/boot.img", type: "file", content: "DEMO-BOOT-IMAGE\n".repeat(256) },
    { name: "system", type: "directory", mode: 0o755 },
    { name: "system/lib", type: "directory", mode: 0o755 },
    { name: "system/lib/modules", type: "directory", mode: 0o755 },
    { name: "system/lib/modules/demo.ko", type: "file", content: "demo kernel module\n" },
  ];
}

async function writeTarXz(path: string, members: Member[], mtime: number): Promise<void> {
  const xz = defaultCodec().compress({ level: 6 });
  const done = pipeline(xz, createWriteStream(path));
  const tar = new GnuTarWriter(xz);
  for (const m of members) {
    const content = m.content === undefined ? undefined : Buffer.from(m.content, m.latin1 ? "latin1" : "utf8");
    const { content: _c, latin1: _l, ...rest } = m;
    await tar.add(
      { ...rest, mode: m.mode ?? 0o644, uid: 0, gid: 0, uname: "root", gname: "root", mtime, size: content?.length ?? 0 },
      content,
    );
  }
  await tar.finish();
  await done;
}

/** Writes rootfs-v1.tar.xz, rootfs-v2.tar.xz and device.tar.xz into `dir`. */
export async function writeSampleInputs(dir: string): Promise<{ rootfs: [string, string]; device: string }> {
  const base = Date.UTC(2026, 0, 1) / 1000;
  const r1 = `${dir}/rootfs-v1.tar.xz`;
  const r2 = `${dir}/rootfs-v2.tar.xz`;
  const dev = `${dir}/device.tar.xz`;
  await writeTarXz(r1, rootfs(1), base);
  // Same mtimes: only what really changed goes into the delta.
  await writeTarXz(r2, rootfs(2), base);
  await writeTarXz(dev, device(), base);
  return { rootfs: [r1, r2], device: dev };
}
