/**
 * What the mirror end-to-end tests compare: a tree's files, and the system/ tree a device
 * should end with after installing an image.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { runDeviceClient, type DeviceClientOptions } from "./device-client.js";

/** Every file under `root` (relative path → bytes), skipping dotfiles (the primary's locks and temps, a mirror's `.si/`). */
export function treeFiles(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const rel = join(e.parentPath, e.name).slice(root.length + 1);
    if (rel.split("/").some((p) => p.startsWith("."))) continue;
    out.set(rel, readFileSync(join(root, rel)));
  }
  return out;
}

/** The system/ tree a device should end with: the image's files (under `publish`) extracted in `order`, in a new directory under `scratch`. */
export function referenceSystem(scratch: string, publish: string, img: IndexDoc["images"][number]): string {
  const dir = mkdtempSync(join(scratch, "ref-"));
  for (const f of [...img.files].sort((a, b) => a.order - b.order)) {
    execFileSync("tar", ["--numeric-owner", "-xJf", join(publish, f.path), "-C", dir]);
  }
  return join(dir, "system");
}

/**
 * The real-client device model (devel/mako, build 0 unless `o` says otherwise) reading a copy
 * of the tree over plain HTTP on 127.0.0.1:`port`; plain HTTP makes the client read documents
 * from the HTTP base too (client-protocol §1.1). `keyrings`: the primary's keyring directory.
 */
export function deviceOverHttp(port: number, keyrings: string, workDir: string, o: Partial<DeviceClientOptions> = {}) {
  return runDeviceClient({
    host: "127.0.0.1",
    httpPort: port,
    httpsPort: "disabled",
    channel: "devel",
    device: "mako",
    buildNumber: 0,
    archiveMaster: join(keyrings, "archive-master.tar.xz"),
    workDir,
    ...o,
  });
}
