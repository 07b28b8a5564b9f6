/**
 * What the mirror end-to-end tests compare: a tree's files, and the system/ tree a device
 * should end with after installing an image.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { IndexDoc } from "../../src/model/index-doc.js";

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
