/**
 * What the published tree offers devices, as the dashboard shows it: channels, their devices,
 * and each device's images with version, tag, phased percentage and size. Read through the
 * Tree API on a queue of its own: documents are committed by atomic rename, so a reader never
 * sees half a file and need not wait behind a running import's operations.
 */
import type { Config } from "../config/types.js";
import { compareCodePoints } from "../format/pyjson.js";
import { errorMessage } from "../errors.js";
import { getTagsOnVersionDetail, splitVersionDetail } from "../model/version-detail.js";
import { OpQueue, Tree, type Image } from "../tree/index.js";

export interface ImageView {
  version: number;
  type: string;
  /** Delta images: the version they apply to. */
  base?: number;
  description: string;
  /** From version_detail `tag=` (server-reference §8.4); null when untagged. */
  tag: string | null;
  /** Absent = offered to every device (100 %). */
  phased?: number;
  files: number;
  bytes: number;
}

export interface DeviceView {
  name: string;
  /** Per-device redirect (client follows it to another channel). */
  redirect?: string;
  /** The device keyring's path in the tree, when it has one. */
  keyring?: string;
  /** Full images, newest first; deltas listed with the full image they lead to. */
  images: (ImageView & { deltas: number[] })[];
  /** Why the device's index could not be read. */
  error?: string;
}

export interface ChannelView {
  name: string;
  alias?: string;
  redirect?: string;
  hidden: boolean;
  devices: DeviceView[];
}

export interface Fleet {
  channels: ChannelView[];
  /** Why the tree could not be read at all (missing publish_path, bad channels.json). */
  error?: string;
}

function imageView(img: Image): ImageView {
  const tag = getTagsOnVersionDetail(splitVersionDetail(img.version_detail ?? ""));
  return {
    version: img.version,
    type: img.type,
    base: img.base,
    description: img.description ?? "",
    tag,
    phased: img["phased-percentage"],
    files: img.files.length,
    bytes: img.files.reduce((n, f) => n + (typeof f.size === "number" ? f.size : 0), 0),
  };
}

/** Full images newest first, each with the bases of the deltas that lead to it. */
export function groupImages(images: Image[]): DeviceView["images"] {
  const full = images.filter((i) => i.type === "full").map((i) => ({ ...imageView(i), deltas: [] as number[] }));
  for (const d of images.filter((i) => i.type === "delta")) {
    const target = full.find((f) => f.version === d.version);
    if (target && typeof d.base === "number") target.deltas.push(d.base);
  }
  for (const f of full) f.deltas.sort((a, b) => b - a);
  return full.sort((a, b) => b.version - a.version);
}

/** `images: false` reads channels.json only (devices without images: enough for keyrings). */
export async function readFleet(config: Config, opts: { images?: boolean } = {}): Promise<Fleet> {
  let tree: Tree;
  let doc: Awaited<ReturnType<Tree["listChannels"]>>;
  try {
    tree = new Tree(config, { queue: new OpQueue() });
    doc = await tree.listChannels();
  } catch (err) {
    return { channels: [], error: errorMessage(err) };
  }
  const channels: ChannelView[] = [];
  for (const name of Object.keys(doc).sort(compareCodePoints)) {
    const entry = doc[name];
    const view: ChannelView = { name, alias: entry.alias, redirect: entry.redirect, hidden: entry.hidden === true, devices: [] };
    for (const dev of Object.keys(entry.devices).sort(compareCodePoints)) {
      const d = entry.devices[dev];
      const device: DeviceView = { name: dev, redirect: d.redirect, keyring: d.keyring?.path, images: [] };
      if (opts.images === false) {
        view.devices.push(device);
        continue;
      }
      try {
        device.images = groupImages(await (await tree.getDevice(name, dev)).listImages());
      } catch (err) {
        device.error = errorMessage(err);
      }
      view.devices.push(device);
    }
    channels.push(view);
  }
  return { channels };
}
