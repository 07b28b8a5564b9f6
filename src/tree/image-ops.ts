/**
 * Device index operations (server-reference §7.3) inside a transaction: shared by the Device
 * class and by sync_alias, which edits alias indexes as part of a larger commit.
 */
import { createReadStream } from "node:fs";
import { TreeError } from "../errors.js";
import { hashStream } from "../io/hashing.js";
import type { FileEntry, Image } from "../model/index-doc.js";
import {
  assertUniqueBasenames,
  buildImage,
  checkNewImage,
  expireImages,
  insertImage,
  removeImage,
  setDescription,
  setPhasedPercentage,
  type NewImage,
} from "../model/images.js";
import { urlPathProblem } from "../model/naming.js";
import { exists, expandPath } from "./paths.js";
import type { Txn } from "./txn.js";

export interface CreateImageArgs {
  type: string;
  version: number;
  description: string;
  paths: string[];
  base?: number | null;
  bootme?: boolean;
  minversion?: number | null;
  versionDetail?: string | null;
}

/** SHA-256 and size of a file, streamed (images are gigabytes). */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const { sha256, bytes } = await hashStream(createReadStream(path));
  return { sha256, size: bytes };
}

/** SHA-256 and size by real path, for files the caller just wrote (so they are not re-read). */
export type KnownDigests = ReadonlyMap<string, { sha256: string; size: number }>;

/**
 * File entries for `paths` (relative to, or absolute inside, `pubPath`), in order (§7.3).
 * Every file and its `.asc` must exist: an index never names a missing file.
 */
export async function fileEntries(paths: string[], pubPath: string, known?: KnownDigests): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for (const [order, p] of paths.entries()) {
    const { abspath, url } = expandPath(p, pubPath);
    if (!exists(abspath)) throw new TreeError(`Specified file doesn't exists: ${abspath}`, "Exception");
    if (!exists(`${abspath}.asc`)) throw new TreeError(`The GPG file signature doesn't exists: ${abspath}.asc`, "Exception");
    const bad = urlPathProblem(url);
    if (bad) throw new TreeError(`Cannot add ${abspath} to an image: its URL path ${url} is unusable, ${bad}`, "ValueError");
    const { sha256, size } = known?.get(abspath) ?? (await hashFile(abspath));
    out.push({ checksum: sha256, order, path: url, signature: `${url}.asc`, size });
  }
  return out;
}

export async function opCreateImage(t: Txn, indexPath: string, pubPath: string, a: CreateImageArgs, known?: KnownDigests): Promise<void> {
  const what = `${a.type} image ${String(a.version)}`;
  if (!Array.isArray(a.paths) || a.paths.length === 0) {
    throw new TreeError(`No file passed for this image. (${what} in ${indexPath})`, "Exception");
  }
  const files = await fileEntries(a.paths, pubPath, known);
  const img: NewImage = { ...a, files };
  checkNewImage(img);
  const doc = await t.index(indexPath, { write: true });
  assertUniqueBasenames(doc, img);
  insertImage(doc, buildImage(img));
}

export async function opRemoveImage(t: Txn, indexPath: string, type: string, version: number, base?: number | null): Promise<Image> {
  return removeImage(await t.index(indexPath, { write: true }), type, version, base, indexPath);
}

export async function opSetDescription(
  t: Txn,
  indexPath: string,
  a: { type: string; version: number; description: string; translations?: unknown; base?: number | null },
): Promise<void> {
  const doc = await t.index(indexPath, { write: true });
  setDescription(doc, a.type, a.version, a.description, a.translations, a.base, indexPath);
}

export async function opExpireImages(t: Txn, indexPath: string, max: number): Promise<Image[]> {
  return expireImages(await t.index(indexPath, { write: true }), max);
}

export async function opSetPhasedPercentage(t: Txn, indexPath: string, version: number, percentage: unknown): Promise<void> {
  setPhasedPercentage(await t.index(indexPath, { write: true }), version, percentage, indexPath);
}
