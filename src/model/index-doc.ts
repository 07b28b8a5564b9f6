/**
 * index.json as data (server-reference §2.3): types, decoding with validation, the
 * phased-percentage clean-up every load applies, and the "did it change?" test of a commit.
 */
import { TreeError } from "../errors.js";
import { dumpPyJson, type JsonValue } from "../format/pyjson.js";
import { formatGeneratedAt } from "./generated-at.js";

export type FileEntry = {
  checksum: string;
  order: number;
  path: string;
  signature: string;
  size: number;
  [key: string]: JsonValue | undefined;
};

export type ImageType = "full" | "delta";

export type Image = {
  type: string;
  version: number;
  base?: number;
  description?: string;
  files: FileEntry[];
  bootme?: boolean;
  minversion?: number;
  version_detail?: string;
  "phased-percentage"?: number;
  [key: string]: JsonValue | undefined;
};

export type IndexDoc = {
  global: { generated_at?: string; [key: string]: JsonValue | undefined };
  images: Image[];
  [key: string]: JsonValue | undefined;
};

export const PHASED = "phased-percentage";

export function emptyIndex(): IndexDoc {
  return { global: {}, images: [] };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Decodes index.json text as written (no clean-up). Missing or empty = the empty index.
 * Shapes the operations rely on (an images list of objects with an integer version, a type
 * and a files list) are checked here so a damaged file fails on load, naming the file.
 */
export function parseIndex(text: string, file: string): IndexDoc {
  if (text === "") return emptyIndex();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TreeError(`Cannot read ${file}: invalid JSON (${(err as Error).message})`, "ValueError");
  }
  if (!isObject(value)) throw new TreeError(`Invalid index.json, not a dict. (${file})`, "TypeError");
  if (!isObject(value.global)) throw new TreeError(`Invalid index.json: no "global" object (${file})`, "TypeError");
  if (!Array.isArray(value.images)) throw new TreeError(`Invalid index.json: no "images" list (${file})`, "TypeError");
  value.images.forEach((img: unknown, i: number) => {
    const bad = (why: string) => new TreeError(`Invalid index.json: image #${i} ${why} (${file})`, "TypeError");
    if (!isObject(img)) throw bad("is not an object");
    if (typeof img.version !== "number" || !Number.isInteger(img.version)) throw bad("has no integer version");
    if (typeof img.type !== "string") throw bad("has no type");
    if (!Array.isArray(img.files) || !img.files.every(isObject)) throw bad("has no list of file objects");
  });
  return value as IndexDoc;
}

/**
 * The invariant applied on every load (§2.3): only images of the highest version may carry a
 * phased percentage. Returns true when something was removed.
 */
export function cleanupPhased(doc: IndexDoc): boolean {
  if (doc.images.length === 0) return false;
  const last = Math.max(...doc.images.map((i) => i.version));
  let changed = false;
  for (const img of doc.images) {
    if (img.version !== last && Object.hasOwn(img, PHASED)) {
      delete img[PHASED];
      changed = true;
    }
  }
  return changed;
}

/** Canonical form for "did the content change?" (key order and layout do not count). */
export function canonical(doc: JsonValue): string {
  return dumpPyJson(doc);
}

/** The bytes written for an index: `generated_at` stamped with `when` (§2.3). */
export function serializeIndex(doc: IndexDoc, when: Date): string {
  doc.global.generated_at = formatGeneratedAt(when);
  return dumpPyJson(doc);
}
