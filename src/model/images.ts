/**
 * Image operations of a device's index (server-reference §7.3) on an IndexDoc, with the
 * reference's error kinds and messages (Appendix A) plus what the message is about.
 */
import { TreeError } from "../errors.js";
import { compareCodePoints } from "../format/pyjson.js";
import { PHASED, type FileEntry, type Image, type IndexDoc } from "./index-doc.js";
import { assertVersionNumber } from "./names.js";

export interface NewImage {
  type: string;
  version: number;
  description: string;
  files: FileEntry[];
  base?: number | null;
  bootme?: boolean;
  minversion?: number | null;
  versionDetail?: string | null;
}

const label = (type: string, version: unknown, base?: unknown) =>
  type === "delta" ? `delta image ${String(version)} (base ${String(base)})` : `${type} image ${String(version)}`;

const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** The type checks of create_image (§7.3), run after the files were found. */
export function checkNewImage(img: NewImage): void {
  const what = label(img.type, img.version, img.base);
  if (img.type !== "full" && img.type !== "delta") {
    // The client asserts the type (client-protocol §5.2); the reference did not check.
    throw new TreeError(`Invalid image type: ${img.type} (cannot create ${what})`, "ValueError");
  }
  if (img.type === "delta" && !img.base) throw new TreeError(`Missing base version for delta image. (${what})`, "KeyError");
  if (img.type === "full" && img.base) throw new TreeError(`Base version set for full image. (${what})`, "KeyError");
  if (img.type === "delta" && img.minversion) throw new TreeError(`Minimum version set for delta image. (${what})`, "KeyError");
  assertVersionNumber(img.version, "version", `cannot create ${what}`);
  if (img.base) assertVersionNumber(img.base, "base", `cannot create ${what}`);
  if (img.minversion) assertVersionNumber(img.minversion, "minversion", `cannot create ${what}`);
  if (img.files.length === 0) throw new TreeError(`No file passed for this image. (${what})`, "Exception");
}

/**
 * Devices download every file of an upgrade path into one directory by basename, and a
 * second URL with the same basename aborts the update (client-protocol §5.2, §11 #13). So a
 * basename may name only one URL path in the whole index.
 */
export function assertUniqueBasenames(doc: IndexDoc, img: NewImage): void {
  const seen = new Map<string, string>();
  for (const other of doc.images) for (const f of other.files) seen.set(basename(f.path), f.path);
  const own = new Map<string, string>();
  for (const f of img.files) {
    const b = basename(f.path);
    const prev = own.get(b) ?? seen.get(b);
    if (own.has(b) || (prev !== undefined && prev !== f.path)) {
      const what = `Cannot create ${label(img.type, img.version, img.base)}`;
      if (own.get(b) === f.path) throw new TreeError(`${what}: it lists ${f.path} twice`, "ValueError");
      throw new TreeError(
        `${what}: ${f.path} and ${prev} have the same file name '${b}', and devices download the files of an update into one directory by name`,
        "ValueError",
      );
    }
    own.set(b, f.path);
  }
}

/** The stored object, keys as the reference sets them (§7.3). */
export function buildImage(img: NewImage): Image {
  const out: Image = { type: img.type, version: img.version, description: img.description, files: img.files };
  if (img.type === "delta") out.base = Math.trunc(Number(img.base));
  if (img.bootme) out.bootme = true;
  if (img.minversion) out.minversion = img.minversion;
  if (img.versionDetail) out.version_detail = img.versionDetail;
  return out;
}

/**
 * Adds an image after every image of the same or a lower version: lists stay sorted by
 * ascending version, which the UBports installer relies on (client-protocol §11 #20).
 */
export function insertImage(doc: IndexDoc, image: Image): void {
  const at = doc.images.findIndex((i) => i.version > image.version);
  if (at === -1) doc.images.push(image);
  else doc.images.splice(at, 0, image);
}

function matches(img: Image, type: string, version: number, base?: number | null): boolean {
  return img.type === type && img.version === version && (type === "full" || img.base === base);
}

/** Position of the single image matching (type, version, base); the reference's errors otherwise. */
export function findImage(doc: IndexDoc, type: string, version: number, base: number | null | undefined, where: string): number {
  if (type !== "full" && type !== "delta") throw new TreeError(`Invalid image type: ${type} (${where})`, "ValueError");
  if (type === "delta" && !base)
    throw new TreeError(`Missing base version for delta image. (delta image ${version} in ${where})`, "ValueError");
  const hits: number[] = [];
  doc.images.forEach((img, i) => {
    if (matches(img, type, version, base)) hits.push(i);
  });
  if (hits.length !== 1) {
    const why = hits.length === 0 ? "" : `, ${hits.length} images match`;
    throw new TreeError(`Couldn't find a match. (${label(type, version, base)} in ${where}${why})`, "IndexError");
  }
  return hits[0];
}

export function removeImage(doc: IndexDoc, type: string, version: number, base: number | null | undefined, where: string): Image {
  const i = findImage(doc, type, version, base, where);
  return doc.images.splice(i, 1)[0];
}

/** Sets `description` and `description_<lang>` (underscore form kept: §2.3 [QUIRK]). */
export function setDescription(
  doc: IndexDoc,
  type: string,
  version: number,
  description: string,
  translations: unknown,
  base: number | null | undefined,
  where: string,
): void {
  if (translations !== undefined && translations !== null && (typeof translations !== "object" || Array.isArray(translations))) {
    throw new TreeError(
      `translations must be a dict. (got ${JSON.stringify(translations)} for ${label(type, version, base)})`,
      "TypeError",
    );
  }
  const entries = Object.entries((translations ?? {}) as Record<string, unknown>);
  for (const [lang, text] of entries) {
    if (lang === "" || typeof text !== "string") {
      throw new TreeError(
        `Cannot set description '${lang}' of ${label(type, version, base)}: it must be a language code with a string value`,
        "TypeError",
      );
    }
  }
  const img = doc.images[findImage(doc, type, version, base, where)];
  img.description = description;
  for (const [lang, text] of entries) img[`description_${lang}`] = text as string;
}

/**
 * Keeps the newest `max` full images; removes older fulls and every delta whose version or
 * base is one of them (§7.3). Returns the removed images.
 */
export function expireImages(doc: IndexDoc, max: number): Image[] {
  if (!Number.isInteger(max) || max < 0) {
    throw new TreeError(
      `Cannot expire images: the number of full images to keep must be an integer >= 0, not ${String(max)}`,
      "ValueError",
    );
  }
  const fulls = doc.images.filter((i) => i.type === "full").sort((a, b) => a.version - b.version);
  const n = fulls.length - max;
  if (n <= 0) return [];
  const gone = new Set(fulls.slice(0, n).map((i) => i.version));
  const removed = doc.images.filter((i) => gone.has(i.version) || (i.type !== "full" && gone.has(i.base as number)));
  doc.images = doc.images.filter((i) => !removed.includes(i));
  return removed;
}

export function getPhasedPercentage(doc: IndexDoc, version: number, where: string): number {
  const img = doc.images.find((i) => i.version === version);
  if (!img) throw new TreeError(`Invalid version number: ${version} (${where})`, "IndexError");
  return img[PHASED] ?? 100;
}

/** §7.3: only on the latest version, on every image of it; 100 removes the key. */
export function setPhasedPercentage(doc: IndexDoc, version: number, percentage: unknown, where: string): void {
  if (typeof percentage !== "number" || !Number.isInteger(percentage)) {
    throw new TreeError(
      `percentage must be an integer. (got ${JSON.stringify(percentage)} for version ${version} in ${where})`,
      "TypeError",
    );
  }
  if (percentage < 0 || percentage > 100) {
    throw new TreeError(`percentage must be >= 0 and <= 100. (got ${percentage} for version ${version} in ${where})`, "ValueError");
  }
  const versions = doc.images.map((i) => i.version);
  if (!versions.includes(version)) throw new TreeError(`Version doesn't exist: ${version} (${where})`, "IndexError");
  const last = Math.max(...versions);
  if (version !== last) {
    throw new TreeError(
      `Phased percentage can only be set on the latest image (version ${version}; latest is ${last} in ${where})`,
      "Exception",
    );
  }
  for (const img of doc.images) {
    if (img.version !== version) continue;
    if (percentage === 100) delete img[PHASED];
    else img[PHASED] = percentage;
  }
}

/** Image identity for alias syncing: (version, base or -1, type) (§7.1). */
export type ImageKey = [number, number, string];
export const imageKey = (i: Image): ImageKey => [i.version, typeof i.base === "number" ? i.base : -1, i.type];
export const keyString = (k: ImageKey) => `${k[0]}\u0000${k[1]}\u0000${k[2]}`;
export function compareKeys(a: ImageKey, b: ImageKey): number {
  return a[0] - b[0] || a[1] - b[1] || compareCodePoints(a[2], b[2]);
}
