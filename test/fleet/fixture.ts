/**
 * A real published tree for the fleet tests, made with the Tree API and real signatures:
 * devel/mako with full 1, full 2 and delta 2←1, rootfs files large enough (16 MiB of random
 * bytes) that a client that stops reading leaves the response unfinished on si serve and
 * nginx alike (more than loopback socket buffers hold).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ChannelsDoc } from "../../src/model/channels.js";
import { signedFile, treeFixture, type TreeFixture } from "../tree/fixture.js";

export const BIG = 16 * 1024 * 1024;

export const PATHS = {
  rootfs1: "/pool/rootfs-1111.tar.xz",
  rootfs2: "/pool/rootfs-2222.tar.xz",
  delta: "/pool/rootfs-2222.delta-rootfs-1111.tar.xz",
  device: "/pool/device-aaaa.tar.xz",
  version1: "/devel/mako/version-1.tar.xz",
  version2: "/devel/mako/version-2.tar.xz",
};

export interface FleetTree extends TreeFixture {
  /** The index path channels.json names (a content-named copy). */
  indexCopy(): string;
}

export async function fleetTree(): Promise<FleetTree> {
  const f = await treeFixture();
  const sizes: Record<string, number> = {
    rootfs1: BIG,
    rootfs2: BIG + 4321,
    delta: 3 * 1024 * 1024 + 7,
    device: 200_000,
    version1: 500,
    version2: 501,
  };
  for (const [name, path] of Object.entries(PATHS)) await signedFile(f.signer, join(f.pub, path), randomBytes(sizes[name]));
  await f.tree.createChannel("devel");
  await f.tree.createDevice("devel", "mako");
  const dev = await f.tree.getDevice("devel", "mako");
  const rel = (p: string) => p.slice(1);
  await dev.createImage("full", 1, "v1", [PATHS.rootfs1, PATHS.device, PATHS.version1].map(rel));
  await dev.createImage("full", 2, "v2", [PATHS.rootfs2, PATHS.device, PATHS.version2].map(rel));
  await dev.createImage("delta", 2, "v2 from 1", [PATHS.delta, PATHS.version2].map(rel), 1);
  return {
    ...f,
    indexCopy: () => (JSON.parse(readFileSync(join(f.pub, "channels.json"), "utf8")) as ChannelsDoc).devel.devices.mako.index,
  };
}

export const ua = (build: number, device = "mako", channel = "devel") =>
  `Ubuntu System Image Upgrade Client: device=${device};channel=${channel};build=${build}`;
