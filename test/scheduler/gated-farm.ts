/**
 * A build farm for the scheduler tests whose rootfs download can be held until the test lets
 * it go (the import then sits in the middle of a run, holding the global lock).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { makeDeviceTree, makeRootfsV1, makeRootfsV2, tarXz, tmp } from "../importer/fixtures.js";

export class GatedFarm {
  files = new Map<string, string | Buffer>();
  private gate: Promise<void> | null = null;
  private open: () => void = () => undefined;
  private arrived: (() => void)[] = [];
  url = "";
  private server: Server = createServer((req, res) => {
    const body = this.files.get(req.url ?? "");
    if (body === undefined) return void res.writeHead(404).end();
    const answer = () => res.writeHead(200, { "content-length": Buffer.byteLength(body) }).end(body);
    if (req.url === "/rootfs.tar.xz" && this.gate) {
      for (const a of this.arrived.splice(0)) a();
      void this.gate.then(answer);
    } else answer();
  });

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  /** Holds rootfs downloads from now on; resolves when one is waiting. */
  hold(): Promise<void> {
    this.gate = new Promise((r) => (this.open = r));
    return new Promise((r) => this.arrived.push(r));
  }
  release(): void {
    this.gate = null;
    this.open();
  }
  close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** The scheduler tests' inputs: rootfs v1/v2 and a device tree, and a started farm. */
export async function farmWithInputs(prefix: string): Promise<{ farm: GatedFarm; src: string; rootfs2: Buffer }> {
  const src = tmp(prefix);
  makeRootfsV1(join(src, "v1"), 200);
  makeRootfsV2(join(src, "v1"), join(src, "v2"));
  makeDeviceTree(join(src, "device"));
  const rootfs2 = readFileSync(tarXz(join(src, "v2"), join(src, "rootfs-v2.tar.xz"), ["system"]));
  const farm = new GatedFarm();
  await farm.start();
  return { farm, src, rootfs2 };
}
