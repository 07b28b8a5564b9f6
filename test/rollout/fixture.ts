/**
 * A real instance whose channel `devel` has `rollout = 5%@0h, 25%@24h, 100%@72h`, imported
 * twice by the real CLI from the importer fixtures' build farm: devel/mako gets full 1, then
 * full 2 and delta 2←1, each new version published at the first step (5 %), signed by the
 * test keys, with the device keyrings published in gpg/.
 */
import { appendFileSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import type { Instance } from "../helpers/instance.js";
import { makeDeviceTree, makeRootfsV1, makeRootfsV2, serveInputs, standardInstance, tarXz, tmp } from "../importer/fixtures.js";

export const STEPS = "5%@0h, 25%@24h, 100%@72h";

export interface RolloutTree {
  inst: Instance;
  config: Config;
  index(): IndexDoc;
  indexFile: string;
  /** Imports version 2 (the first import made version 1). */
  importV2(): Promise<void>;
  close(): Promise<void>;
}

export async function buildRolloutTree(opts: { channelLines?: string[] } = {}): Promise<RolloutTree> {
  const farm = await serveInputs();
  const src = tmp("si-rollout-inputs-");
  const v1 = join(src, "v1");
  const v2 = join(src, "v2");
  makeRootfsV1(v1, 200);
  makeRootfsV2(v1, v2);
  makeDeviceTree(join(src, "device"));
  const v1Tar = tarXz(v1, join(src, "rootfs-v1.tar.xz"), ["system"]);
  const v2Tar = tarXz(v2, join(src, "rootfs-v2.tar.xz"), ["system"]);
  const device = tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"]);
  farm.routes.set("/rootfs.tar.xz", { file: v1Tar });
  farm.routes.set("/rootfs.version", { body: "20260101-1\n" });
  farm.routes.set("/device.tar.xz", { file: device });
  farm.routes.set("/device.version", { body: "7" });
  const inst = await standardInstance(farm.url);
  // [channel_devel] is the config's last section.
  appendFileSync(inst.config, [`rollout = ${STEPS}`, ...(opts.channelLines ?? []), ""].join("\n"));
  const config = await loadConfig(inst.config);
  const r1 = await inst.siAsync("import-images");
  expect(r1.status, r1.stdout + r1.stderr).toBe(0);
  const indexFile = join(inst.publish, "devel/mako/index.json");
  return {
    inst,
    config,
    indexFile,
    index: () => JSON.parse(readFileSync(indexFile, "utf8")) as IndexDoc,
    async importV2() {
      farm.routes.set("/rootfs.tar.xz", { file: v2Tar });
      farm.routes.set("/rootfs.version", { body: "20260102-1" });
      const r2 = await inst.siAsync("import-images");
      expect(r2.status, r2.stdout + r2.stderr).toBe(0);
    },
    async close() {
      await farm.close();
      rmSync(src, { recursive: true, force: true });
    },
  };
}

/** [type, version, base, phased-percentage or 100] of each image. */
export const phases = (doc: IndexDoc) => doc.images.map((i) => [i.type, i.version, i.base ?? null, i["phased-percentage"] ?? 100]);
