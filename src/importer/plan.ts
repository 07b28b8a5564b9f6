/**
 * Pure planning for import-images (server-reference §5.6): which file entries a device
 * builds, its next version, its delta bases, the automatic date tag, and where each new
 * file's delta comes from. No IO; the importer (import-images.ts) applies the plan.
 */
import type { ChannelConfig, FileEntry } from "../config/types.js";
import type { ChannelsDoc } from "../model/channels.js";
import type { Image } from "../model/index-doc.js";
import { basenameOf } from "../model/naming.js";

export interface ResolvedEntry {
  /** File name without the device override (`device` for `device,mako`). */
  fileName: string;
  entry: FileEntry;
}

/**
 * Device overrides (§4.5, §5.6 step 6): `name,device` entries apply to that device only, and
 * the first entry of a file name wins, so overrides are listed before the generic entry.
 */
export function resolveEntries(files: readonly FileEntry[], device: string): ResolvedEntry[] {
  const seen = new Set<string>();
  const out: ResolvedEntry[] = [];
  for (const entry of files) {
    const comma = entry.name.indexOf(",");
    const fileName = comma === -1 ? entry.name : entry.name.slice(0, comma);
    if (comma !== -1 && entry.name.slice(comma + 1) !== device) continue;
    if (seen.has(fileName)) continue;
    seen.add(fileName);
    out.push({ fileName, entry });
  }
  return out;
}

export function latestFull(images: readonly Image[]): Image | undefined {
  let best: Image | undefined;
  for (const img of images) if (img.type === "full" && (!best || img.version > best.version)) best = img;
  return best;
}

/** §5.6 step 4: one past the last full image, or `versionbase` for a new device. */
export function nextVersion(images: readonly Image[], versionbase: number): number {
  const last = latestFull(images);
  return last ? last.version + 1 : versionbase;
}

export interface DeltaBaseWarning {
  channel: string;
  message: string;
}

/**
 * §5.6 step 3: for each `deltabase` channel, its device's latest full version — used only if
 * the building device has a full image of that version (its own image is the base).
 */
export function deltaBases(
  channels: ChannelsDoc,
  conf: Pick<ChannelConfig, "deltabase">,
  device: string,
  ownImages: readonly Image[],
  imagesOf: (channel: string, device: string) => readonly Image[],
): { bases: Image[]; warnings: DeltaBaseWarning[] } {
  const bases: Image[] = [];
  const warnings: DeltaBaseWarning[] = [];
  for (const b of conf.deltabase) {
    if (!(b in channels)) {
      warnings.push({ channel: b, message: `Invalid delta base channel: ${b}` });
      continue;
    }
    if (!(device in (channels[b].devices ?? {}))) {
      warnings.push({ channel: b, message: `Device ${device} not in delta base channel: ${b}` });
      continue;
    }
    const latest = latestFull(imagesOf(b, device));
    if (!latest) continue;
    const own = ownImages.find((i) => i.type === "full" && i.version === latest.version);
    if (own && !bases.includes(own)) bases.push(own);
  }
  return { bases, warnings };
}

/**
 * The automatic date tag of the `ubports` entry (§5.6): `YYYY-MM-DD`, then `/2`, `/3`, ...
 * for further images the same day. Reads the previous tag from the last full image's
 * version_detail (any `tag=` item; the reference's single-item scan bug is not kept).
 */
export function nextDateTag(today: string, lastFull: Image | undefined): string {
  const lastTag = (lastFull?.version_detail ?? "")
    .split(",")
    .find((item) => item.startsWith("tag="))
    ?.slice(4);
  if (!lastTag) return today;
  if (lastTag === today) return `${today}/2`;
  const slash = lastTag.indexOf("/");
  if (slash !== -1 && lastTag.slice(0, slash) === today) {
    const n = Number.parseInt(lastTag.slice(slash + 1), 10);
    if (Number.isInteger(n)) return `${today}/${n + 1}`;
  }
  return today;
}

/** Today's date as the reference writes tags: the server's local date, YYYY-MM-DD. */
export function localDate(now: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`;
}

/**
 * The source of a delta for a new file (§5.6): the first file of the base image whose
 * basename *starts with* the new file's prefix (the reference's `startswith`, kept: config
 * prefixes rely on it).
 */
export function deltaSource(base: Image, prefix: string): string | undefined {
  return base.files.find((f) => basenameOf(f.path).startsWith(prefix))?.path;
}

/** Files that are shipped whole in every delta, even unchanged (§5.6, 2022 boot- rule). */
export function alwaysShipped(urlPath: string): boolean {
  const name = basenameOf(urlPath);
  return name.includes("keyring-") || name.includes("boot-");
}
