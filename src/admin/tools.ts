/**
 * The helpers of the reference's tools.py that the admin commands share (server-reference
 * §8.4): extract_files_and_version and get_required_deltas. The delta-base rule itself lives
 * in the import planner (src/importer/plan.ts) and is reused here, so copy-image, tag-image
 * and import-images cannot disagree about it.
 */
import { readFile } from "node:fs/promises";
import type { ChannelConfig, Config } from "../config/types.js";
import { planDevice } from "../importer/import-device.js";
import type { ChannelsDoc } from "../model/channels.js";
import { ROLLOUT_DEFAULTS } from "../model/rollout-steps.js";
import type { FileEntry, Image } from "../model/index-doc.js";
import { basenameOf, sidecarPath, versionTarballName } from "../model/naming.js";
import { pyRealpath, type Tree } from "../tree/index.js";

/**
 * The channel's config section, or what the reference assumes for a channel that is not in
 * the config: a manual channel whose delta base is itself (§8.4 get_required_deltas).
 */
export function channelConfigOf(config: Pick<Config, "channels"> & Partial<Pick<Config, "delta_mtime">>, name: string): ChannelConfig {
  return (
    config.channels.get(name) ?? {
      name,
      type: "manual",
      versionbase: 1,
      fullcount: 0,
      deltabase: [name],
      files: [],
      delta_mtime: config.delta_mtime ?? "content",
      ...ROLLOUT_DEFAULTS,
    }
  );
}

/** `channel.ini.version_detail` of a version tarball's sidecar (§2.5), "" when absent. */
export async function versionDetailOf(versionTarball: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(sidecarPath(versionTarball), "utf8");
  } catch {
    return "";
  }
  try {
    const meta = JSON.parse(text) as { "channel.ini"?: { version_detail?: unknown } };
    const v = meta?.["channel.ini"]?.version_detail;
    return typeof v === "string" ? v : "";
  } catch {
    return "";
  }
}

/**
 * extract_files_and_version (§8.4): the real path of every file of an image goes to
 * `outList`, except `version-<version>.tar.xz`, whose sidecar's version_detail is returned
 * instead ("" if none). `onFile` sees every real path (the reference printed them).
 */
export async function extractFilesAndVersion(
  config: Pick<Config, "publish_path">,
  files: readonly Pick<FileEntry, "path">[],
  version: number,
  outList: string[],
  onFile: (path: string) => void = () => {},
): Promise<string> {
  let detail = "";
  for (const entry of files) {
    const path = pyRealpath(`${config.publish_path}/${entry.path}`);
    onFile(path);
    if (basenameOf(path) === versionTarballName(version)) detail = await versionDetailOf(path);
    else outList.push(path);
  }
  return detail;
}

/**
 * get_required_deltas (§8.4, §5.6 step 3.3): the device's own full images that deltas must
 * start from: for each `deltabase` channel, its latest full version, if this device has a
 * full image of that version. Warnings (unknown base channel, device missing there) go to
 * `warn`; the reference skipped those silently.
 */
export async function getRequiredDeltas(
  config: Pick<Config, "channels">,
  tree: Tree,
  channel: string,
  device: string,
  opts: { channels?: ChannelsDoc; warn?: (msg: string) => void } = {},
): Promise<Image[]> {
  const channels = opts.channels ?? (await tree.listChannels());
  const { plan, bases } = await planDevice(tree, channels, channelConfigOf(config, channel), device);
  for (const w of plan.warnings) opts.warn?.(w);
  return bases;
}
