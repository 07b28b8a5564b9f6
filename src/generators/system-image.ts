/**
 * `system-image` (server-reference §5.4.8): reuse a file of another channel of the local
 * tree: the first file whose prefix equals `prefix` in the highest full image of
 * `<channel>/<device>`. Nothing is written; the file's sidecar supplies the version_detail.
 */
import { join } from "node:path";
import { GeneratorError } from "../errors.js";
import { parseChannels } from "../model/channels.js";
import { parseIndex, type Image } from "../model/index-doc.js";
import { filePrefix } from "../model/naming.js";
import { publishedPathProblem } from "../model/published-path.js";
import { readTextOrNull } from "../tree/commit.js";
import { deviceDirOf, pyRealpath } from "../tree/paths.js";
import { optionsAt, requireArgs } from "./args.js";
import { sidecarVersionDetail } from "./pool.js";
import { checkedDetail } from "./pool-owner.js";
import type { Generator } from "./types.js";

/** The full image with the highest version, or undefined. */
export function latestFull(images: readonly Image[]): Image | undefined {
  let best: Image | undefined;
  for (const img of images) if (img.type === "full" && (!best || img.version > best.version)) best = img;
  return best;
}

export const systemImage: Generator = async (ctx, args, env) => {
  requireArgs(args, ["channel", "prefix"]);
  const [channel, prefix] = [args[0], args[1]];
  const device = optionsAt(args, 2).device ?? env.device_name;
  const root = ctx.config.publish_path;
  const channelsFile = join(root, "channels.json");
  const channels = parseChannels((await readTextOrNull(channelsFile)) ?? "", channelsFile);
  if (!Object.hasOwn(channels, channel)) throw new GeneratorError(`channel '${channel}' is not in ${channelsFile}`);
  const devices = channels[channel].devices;
  if (!Object.hasOwn(devices, device)) throw new GeneratorError(`device '${device}' is not in channel '${channel}'`);
  const entry = devices[device];
  const indexFile = join(deviceDirOf(root, entry.index), "index.json");
  const index = parseIndex((await readTextOrNull(indexFile)) ?? "", indexFile);
  const full = latestFull(index.images);
  if (!full) throw new GeneratorError(`${channel}/${device} has no full image`);
  const file = full.files.find((f) => typeof f.path === "string" && filePrefix(f.path) === prefix);
  if (!file) throw new GeneratorError(`no file with prefix '${prefix}' in ${channel}/${device} version ${full.version}`);
  // A tree made elsewhere (the reference, a hand edit) may hold paths we would not publish.
  const bad = publishedPathProblem(file.path);
  if (bad)
    throw new GeneratorError(
      `refusing file path ${JSON.stringify(file.path)} of ${channel}/${device} version ${full.version} in ${indexFile}: ${bad}`,
      "ValueError",
    );
  // The file's existence is not checked here (§5.4.8): create_image refuses a missing one.
  // Its owner is our own signed index, so no owner check (pool-owner.ts) applies here.
  const path = pyRealpath(`${root}/${file.path}`);
  const detail = await sidecarVersionDetail(path);
  if (detail !== null) env.version_detail.push(checkedDetail(path, detail));
  ctx.log(`I: reusing ${path} from ${channel}/${device}`);
  return path;
};
