/**
 * What a fetch of a published file means, decided from the documents devices read: for each
 * channel/device index (channels.json names it), which URL is the "marker" of each image, and
 * which URLs are that device's index polls. Pure: documents in, lookup tables out.
 *
 * The rule (issue 17, .notes/readme-fleet.md):
 * - A device upgrading to an image fetches every file of it (client-protocol §3 step 9), but
 *   most files are shared: `version-N.tar.xz` by full N and every delta to N, the device and
 *   keyring tarballs by consecutive full images. So each image gets one marker: its largest
 *   file that no other image of the same index lists (the rootfs of a full image, the
 *   `…delta-<S>` tarball of a delta). One GET of the marker = one download of that image. An
 *   image without such a file (every file shared) has no marker and is never counted.
 * - Pool files are shared between channels too (alias channels, the system-image generator):
 *   a marker listed by several indexes counts for the one the client's User-Agent names
 *   (client-protocol §2: `device=…;channel=…`), and for each of them when the User-Agent names
 *   none (flashing tools, download managers).
 * - A poll is a GET of the device directory's `index.json` or of a content-named copy
 *   `index-<16 hex>.json` (src/tree/versioned-index.ts). Redirect channels and per-device
 *   redirects name their target's index (server-reference §1.5): they count for the target.
 */
import type { ChannelsDoc } from "../model/channels.js";
import type { IndexDoc } from "../model/index-doc.js";
import { compareCodePoints } from "../format/pyjson.js";

export type ImageKind = "full" | "delta";

/** A channel/device whose index is published (not a redirect to another one). */
export interface Owner {
  channel: string;
  device: string;
}

/** One image of one owner's index. */
export interface ImageRef extends Owner {
  version: number;
  kind: ImageKind;
  /** The delta's base version; null for a full image. */
  base: number | null;
}

/** What a marker URL stands for: the image, and the file's size (for "completed"). */
export interface MarkerTarget {
  image: ImageRef;
  size: number;
}

export interface Attribution {
  /** Marker URL path → the image(s) it stands for (several: a pool file shared by indexes). */
  markers: Map<string, MarkerTarget[]>;
  /** Device directory URL (`/devel/mako`) → its owner (index polls). */
  pollDirs: Map<string, Owner>;
  /** `channel\0device` of any channels.json entry (redirects too) → the owner whose index it reads. */
  entries: Map<string, Owner>;
  /** Every image of every index, owners in code-point order (zero rows of a report). */
  images: ImageRef[];
}

/** The documents: channels.json and, per owner `channel\0device`, its index. */
export interface TreeDocs {
  channels: ChannelsDoc;
  indexes: Map<string, IndexDoc>;
}

export const ownerKey = (channel: string, device: string) => `${channel}\u0000${device}`;

const dirOf = (urlPath: string) => urlPath.slice(0, urlPath.lastIndexOf("/")) || "/";
const isRedirect = (o: object) => Object.hasOwn(o, "redirect");

/** The channel/device entries that own an index (neither a redirect channel nor a per-device redirect). */
export function ownersOf(channels: ChannelsDoc): (Owner & { index: string })[] {
  const out: (Owner & { index: string })[] = [];
  for (const channel of Object.keys(channels).sort(compareCodePoints)) {
    const ch = channels[channel];
    if (isRedirect(ch)) continue;
    for (const device of Object.keys(ch.devices).sort(compareCodePoints)) {
      const entry = ch.devices[device];
      if (!isRedirect(entry)) out.push({ channel, device, index: entry.index });
    }
  }
  return out;
}

const kindOf = (type: string): ImageKind | undefined => (type === "full" || type === "delta" ? type : undefined);

/** Each image of one index with its marker file (see the rule above), when it has one. */
export function markersOf(owner: Owner, doc: IndexDoc): { image: ImageRef; marker?: { path: string; size: number } }[] {
  const listedBy = new Map<string, number>();
  for (const img of doc.images) for (const path of new Set(img.files.map((f) => f.path))) listedBy.set(path, (listedBy.get(path) ?? 0) + 1);
  const out: { image: ImageRef; marker?: { path: string; size: number } }[] = [];
  for (const img of doc.images) {
    const kind = kindOf(img.type);
    if (!kind) continue;
    const image: ImageRef = {
      ...owner,
      version: img.version,
      kind,
      base: kind === "delta" && typeof img.base === "number" ? img.base : null,
    };
    let marker: { path: string; size: number } | undefined;
    for (const f of img.files) {
      if (typeof f.path !== "string" || typeof f.size !== "number" || f.size <= 0 || listedBy.get(f.path) !== 1) continue;
      if (!marker || f.size > marker.size) marker = { path: f.path, size: f.size };
    }
    out.push({ image, marker });
  }
  return out;
}

export function buildAttribution(docs: TreeDocs): Attribution {
  const attr: Attribution = { markers: new Map(), pollDirs: new Map(), entries: new Map(), images: [] };
  const byDir = new Map<string, Owner>();
  for (const o of ownersOf(docs.channels)) {
    const owner = { channel: o.channel, device: o.device };
    byDir.set(dirOf(o.index), owner);
    attr.pollDirs.set(dirOf(o.index), owner);
    const doc = docs.indexes.get(ownerKey(o.channel, o.device));
    if (!doc) continue;
    for (const { image, marker } of markersOf(owner, doc)) {
      attr.images.push(image);
      if (!marker) continue;
      const list = attr.markers.get(marker.path) ?? [];
      list.push({ image, size: marker.size });
      attr.markers.set(marker.path, list);
    }
  }
  for (const [channel, ch] of Object.entries(docs.channels)) {
    for (const [device, entry] of Object.entries(ch.devices)) {
      const owner = byDir.get(dirOf(entry.index));
      if (owner) attr.entries.set(ownerKey(channel, device), owner);
    }
  }
  return attr;
}

export const EMPTY_ATTRIBUTION: Attribution = buildAttribution({ channels: {}, indexes: new Map() });

/**
 * The images a fetch of `path` counts for: the one the client's channel/device (from its
 * User-Agent) reads when it is among them, else all of them. Empty: not a marker.
 */
export function downloadTargets(attr: Attribution, path: string, client?: Owner): MarkerTarget[] {
  const targets = attr.markers.get(path);
  if (!targets) return [];
  if (targets.length === 1 || !client) return targets;
  const owner = attr.entries.get(ownerKey(client.channel, client.device));
  const mine = owner ? targets.filter((t) => t.image.channel === owner.channel && t.image.device === owner.device) : [];
  return mine.length > 0 ? mine : targets;
}

const POLL_NAME = /^index(?:-[0-9a-f]{16})?\.json$/;

/** The owner whose index `path` is (`…/index.json` or a content-named copy), if any. */
export function pollOwner(attr: Attribution, path: string): Owner | undefined {
  if (!path.endsWith(".json")) return undefined;
  const slash = path.lastIndexOf("/");
  if (!POLL_NAME.test(path.slice(slash + 1))) return undefined;
  return attr.pollDirs.get(path.slice(0, slash) || "/");
}
