/**
 * Publishing a new image from an admin command as ONE transaction of the tree: the full
 * image, its deltas, its phased percentage, the expiry of old images and the alias copies
 * all appear in a single commit, or nothing does. The reference made these separate
 * commits (create_image ×n, set_phased_percentage, expire_images, sync_aliases), so for a
 * moment a phased image was offered to every device at 100 %, and a failure half-way left
 * a half-made image (server-reference §9.2 step 13).
 */
import { join } from "node:path";
import type { Config } from "../config/types.js";
import type { Image } from "../model/index-doc.js";
import { Runner, type TreeOptions } from "../tree/context.js";
import { opCreateImage, opExpireImages, opSetPhasedPercentage, type KnownDigests } from "../tree/image-ops.js";
import type { ImageSpec } from "../tree/index.js";
import { opSyncAliases } from "../tree/ops-device.js";

export interface PublishRequest {
  /** Channel whose aliases are re-synced in the same commit. */
  channel: string;
  /** The device directory (get_device's path). */
  deviceDir: string;
  images: ImageSpec[];
  /** Phased percentage of the new version (100 = none). */
  phased: number;
  /** Keep this many full images afterwards (0 = no expiry). */
  fullcount: number;
  checksums?: KnownDigests;
}

/** Runs on the tree's shared queue (after every queued Tree/Device call of this process). */
export async function publishImages(config: Config, opts: TreeOptions, req: PublishRequest): Promise<{ expired: Image[] }> {
  const runner = new Runner(Runner.context(config, config.publish_path, opts), opts);
  const indexPath = join(req.deviceDir, "index.json");
  const version = req.images[0].version;
  return runner.txn("publish_images", [req.channel, req.deviceDir, version], async (t) => {
    for (const spec of req.images) {
      await opCreateImage(
        t,
        indexPath,
        config.publish_path,
        {
          type: spec.type,
          version: spec.version,
          description: spec.description,
          paths: spec.paths,
          base: spec.base,
          bootme: spec.bootme,
          minversion: spec.minversion,
          versionDetail: spec.versionDetail ?? spec.version_detail,
        },
        req.checksums,
      );
    }
    if (req.phased !== 100) await opSetPhasedPercentage(t, indexPath, version, req.phased);
    const expired = req.fullcount > 0 ? await opExpireImages(t, indexPath, req.fullcount) : [];
    await opSyncAliases(t, req.channel);
    return { expired };
  });
}
