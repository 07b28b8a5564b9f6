/**
 * `admin` in the shell: the admin commands that are not Tree operations (copy-image,
 * tag-image, set-phased-percentage, cleanup-tree, re-sign-indexes), with the same rules as
 * the CLI (they take the global lock themselves, waiting as the shell does). Reference-style
 * snake_case names and camelCase both work.
 */
import type { AdminContext } from "../admin/context.js";
import { cleanupTree } from "../admin/cleanup.js";
import { copyImage, type CopyImageRequest } from "../admin/copy-image.js";
import { setPhased } from "../admin/phased.js";
import { reSignIndexes } from "../admin/re-sign.js";
import { tagImage } from "../admin/tag-image.js";

type CopyOptions = Omit<CopyImageRequest, "source" | "destination" | "device">;

/**
 * `inTurn` runs each command in turn with the shell's tree operations (LockingQueue.runUnlocked),
 * so `pub.create_channel("rc"); admin.copy_image("devel", "rc", "mako")` happens in that order.
 */
export function shellAdmin(actx: AdminContext, inTurn: <T>(fn: () => Promise<T>) => Promise<T>) {
  const api = {
    copyImage: (source: string, destination: string, device: string, opts: CopyOptions = {}) =>
      inTurn(() => copyImage(actx, { ...opts, source, destination, device })),
    tagImage: (channel: string, device: string, version: number, tag: string) =>
      inTurn(() => tagImage(actx, { channel, device, version, tag })),
    setPhasedPercentage: (channel: string, device: string, version: number, percentage: number) =>
      inTurn(() => setPhased(actx, { channel, device, version, percentage })),
    cleanupTree: () => inTurn(() => cleanupTree(actx)),
    reSignIndexes: (opts: { all?: boolean } = {}) => inTurn(() => reSignIndexes(actx, opts)),
  };
  return {
    ...api,
    copy_image: api.copyImage,
    tag_image: api.tagImage,
    set_phased_percentage: api.setPhasedPercentage,
    cleanup_tree: api.cleanupTree,
    re_sign_indexes: api.reSignIndexes,
  };
}

export type ShellAdmin = ReturnType<typeof shellAdmin>;
