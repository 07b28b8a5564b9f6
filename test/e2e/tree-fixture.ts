/**
 * A real published tree for the end-to-end and verify-tree tests, built by the real pipeline:
 * the importer fixtures' build farm serves rootfs v1 then v2 and a device tarball, and
 * `si import-images` runs twice, giving devel/mako with full 1, full 2 and delta 2←1, signed
 * by the test keys, with the four gpg/ keyrings published.
 *
 * `realisticSizes` makes full images much bigger than the delta, as real ones are: 1.5 MiB of
 * random bytes in both versions (unchanged, so not in the delta) and 1.5 MiB more in v1 only.
 * Scores count whole MiB (client-protocol §6.2), so then a device on build 0 takes full 2
 * (1:2 costs ≥ 1 MiB more) and one on build 1 takes the delta (full 2 costs ≥ 1 MiB more).
 * With tiny images every candidate ties and the first one generated wins: 1:2 from build 0
 * (whose delta `removed` the recovery then skips) and full 2 from build 1.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import type { Instance } from "../helpers/instance.js";
import { makeDeviceTree, makeRootfsV1, makeRootfsV2, serveInputs, standardInstance, tarXz, tmp } from "../importer/fixtures.js";

export interface ImportedTree {
  inst: Instance;
  config: Config;
  index(): IndexDoc;
}

export async function buildImportedTree(opts: { realisticSizes?: boolean } = {}): Promise<ImportedTree> {
  const farm = await serveInputs();
  const src = tmp("si-e2e-inputs-");
  try {
    const v1 = join(src, "v1");
    const v2 = join(src, "v2");
    makeRootfsV1(v1);
    if (opts.realisticSizes) writeFileSync(join(v1, "system/usr/lib/bulk.bin"), randomBytes(1536 * 1024));
    makeRootfsV2(v1, v2);
    if (opts.realisticSizes) writeFileSync(join(v1, "system/usr/lib/gone-in-v2.bin"), randomBytes(1536 * 1024));
    makeDeviceTree(join(src, "device"));
    const v1Tar = tarXz(v1, join(src, "rootfs-v1.tar.xz"), ["system"]);
    const v2Tar = tarXz(v2, join(src, "rootfs-v2.tar.xz"), ["system"]);
    const device = tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"]);
    farm.routes.set("/rootfs.tar.xz", { file: v1Tar });
    farm.routes.set("/rootfs.version", { body: "20260101-1\n" });
    farm.routes.set("/device.tar.xz", { file: device });
    farm.routes.set("/device.version", { body: "7" });
    const inst = await standardInstance(farm.url);
    const config = await loadConfig(inst.config);
    const r1 = await inst.siAsync("import-images");
    expect(r1.status, r1.stdout + r1.stderr).toBe(0);
    farm.routes.set("/rootfs.tar.xz", { file: v2Tar });
    farm.routes.set("/rootfs.version", { body: "20260102-1" });
    const r2 = await inst.siAsync("import-images");
    expect(r2.status, r2.stdout + r2.stderr).toBe(0);
    const indexFile = join(inst.publish, "devel/mako/index.json");
    const index = () => JSON.parse(readFileSync(indexFile, "utf8")) as IndexDoc;
    expect(index().images.map((i) => [i.type, i.version, i.base])).toEqual([
      ["full", 1, undefined],
      ["full", 2, undefined],
      ["delta", 2, 1],
    ]);
    return { inst, config, index };
  } finally {
    await farm.close();
    rmSync(src, { recursive: true, force: true });
  }
}
