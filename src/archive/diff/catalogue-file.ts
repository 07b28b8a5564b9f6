/**
 * The catalogue sidecar `pool/X.catalogue.gz` of an image `pool/X.tar.xz` (issue 19): what
 * the delta needs of the old image (path, type, mode, owner, size, mtime, sha256, link
 * target, device numbers, ordinal), recorded in the publish pass (src/generators/pool.ts)
 * so a later delta never decompresses the old image again.
 *
 * Format: gzip'd JSON lines. Line 1 a header object (format version, the pool file's sha256,
 * members, content bytes, entry count); then one array per entry in `Catalogue.all()` order
 * (implicit parents included); then `{"end": <entries>}`. Covered by the pool file's
 * integrity: the header's sha256 must equal the pool file's, else the file is ignored. Any
 * damage (truncated, corrupt gzip, a bad line, a count that does not match) reads as "no
 * catalogue": the caller falls back to reading the image.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import type { TarEntryType } from "../tar/types.js";
import { Catalogue, type CatalogueEntry } from "./catalogue.js";

const FORMAT = "si-catalogue";
const VERSION = 1;
const TYPES: readonly TarEntryType[] = ["file", "link", "symlink", "directory", "character-device", "block-device", "fifo"];

/** `pool/X.tar.xz` → `pool/X.catalogue.gz` (any other name: `<name>.catalogue.gz`). */
export function catalogueSidecarPath(poolFile: string): string {
  const stem = poolFile.endsWith(".tar.xz") ? poolFile.slice(0, -".tar.xz".length) : poolFile;
  return `${stem}.catalogue.gz`;
}

interface Header {
  format: string;
  version: number;
  sha256: string;
  members: number;
  contentBytes: number;
  entries: number;
}

/** One entry as a JSON array; trailing optional fields left out. */
function encode(name: string, e: CatalogueEntry): string {
  const row: unknown[] = [
    name,
    e.type,
    e.mode,
    e.uid,
    e.gid,
    e.mtime,
    e.size,
    e.ordinal,
    e.sha256 ?? "",
    e.linkname ?? null,
    e.devmajor !== undefined || e.devminor !== undefined ? [e.devmajor ?? 0, e.devminor ?? 0] : null,
    e.implicit ? 1 : 0,
  ];
  while (row.length > 9 && (row[row.length - 1] === null || row[row.length - 1] === 0)) row.pop();
  return JSON.stringify(row);
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function decode(line: string): [string, CatalogueEntry] | null {
  const row = JSON.parse(line) as unknown;
  if (!Array.isArray(row) || row.length < 9 || row.length > 12) return null;
  const [name, type, mode, uid, gid, mtime, size, ordinal, sha, link, dev, implicit] = row as unknown[];
  if (typeof name !== "string" || !TYPES.includes(type as TarEntryType)) return null;
  if (![mode, uid, gid, mtime, size, ordinal].every(isNum) || typeof sha !== "string") return null;
  const e: CatalogueEntry = {
    type: type as TarEntryType,
    mode: mode as number,
    uid: uid as number,
    gid: gid as number,
    mtime: mtime as number,
    size: size as number,
    ordinal: ordinal as number,
  };
  if (sha !== "") {
    if (!/^[0-9a-f]{64}$/.test(sha)) return null;
    e.sha256 = sha;
  }
  if (link !== undefined && link !== null) {
    if (typeof link !== "string") return null;
    e.linkname = link;
  }
  if (dev !== undefined && dev !== null) {
    if (!Array.isArray(dev) || dev.length !== 2 || !dev.every(isNum)) return null;
    [e.devmajor, e.devminor] = dev as [number, number];
  }
  if (implicit === 1) e.implicit = true;
  return [name, e];
}

/** Lines of the file, batched so gzip sees large writes. */
async function* lines(cat: Catalogue, poolSha256: string): AsyncGenerator<string> {
  const header: Header = {
    format: FORMAT,
    version: VERSION,
    sha256: poolSha256,
    members: cat.members,
    contentBytes: cat.contentBytes,
    entries: cat.entries.size,
  };
  let batch = JSON.stringify(header) + "\n";
  for (const [name, e] of cat.all()) {
    batch += encode(name, e) + "\n";
    if (batch.length >= 1 << 16) {
      yield batch;
      batch = "";
    }
  }
  yield batch + JSON.stringify({ end: cat.entries.size }) + "\n";
}

/** Writes the sidecar of `poolFile` atomically (hidden temporary, fsync, rename). */
export async function writeCatalogueFile(poolFile: string, cat: Catalogue, poolSha256: string): Promise<void> {
  const dest = catalogueSidecarPath(poolFile);
  const tmp = join(dirname(dest), `.${basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await pipeline(Readable.from(lines(cat, poolSha256)), createGzip({ level: 6 }), createWriteStream(tmp, { flags: "wx", mode: 0o644 }));
    const fh = await open(tmp, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * The catalogue recorded for `poolFile`, or null when there is none, it is unreadable or
 * damaged, or it was made for other bytes (its sha256 is not `poolSha256`).
 */
export async function readCatalogueFile(poolFile: string, poolSha256: string): Promise<Catalogue | null> {
  const r = await loadCatalogueFile(poolFile, poolSha256);
  return "catalogue" in r ? r.catalogue : null;
}

/**
 * For verify-tree: why the sidecar of `poolFile` cannot be used ("absent" is not a problem:
 * trees made by older versions or by the reference have none), or null when it is sound.
 */
export async function catalogueFileProblem(poolFile: string, poolSha256: string): Promise<string | null> {
  const r = await loadCatalogueFile(poolFile, poolSha256);
  return "problem" in r && r.problem !== "absent" ? r.problem : null;
}

type Loaded = { catalogue: Catalogue } | { problem: string };

async function loadCatalogueFile(poolFile: string, poolSha256: string): Promise<Loaded> {
  const file = createReadStream(catalogueSidecarPath(poolFile));
  const gunzip = createGunzip();
  file.on("error", (err) => gunzip.destroy(err));
  const rl = createInterface({ input: file.pipe(gunzip), crlfDelay: Infinity });
  const cat = new Catalogue();
  let header: Header | undefined;
  let count = 0;
  let ended = false;
  try {
    for await (const line of rl) {
      if (ended) return { problem: "data after its end marker" };
      if (header === undefined) {
        const h = JSON.parse(line) as Header;
        if (h?.format !== FORMAT || h.version !== VERSION) return { problem: "not a catalogue of this format version" };
        if (h.sha256 !== poolSha256) return { problem: `made for other bytes (sha256 ${String(h.sha256)})` };
        if (![h.members, h.contentBytes, h.entries].every(isNum)) return { problem: "a malformed header" };
        header = h;
        continue;
      }
      if (line.startsWith("{")) {
        const end = JSON.parse(line) as { end?: unknown };
        if (end.end !== count || count !== header.entries) return { problem: `${count} entries where its header says ${header.entries}` };
        ended = true;
        continue;
      }
      const got = decode(line);
      if (got === null) return { problem: `a malformed entry (line ${count + 2})` };
      cat.restore(got[0], got[1]);
      count++;
    }
  } catch (err) {
    // Absent, unreadable, corrupt gzip (CRC or truncation), bad JSON.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { problem: "absent" };
    return { problem: `unreadable: ${(err as Error).message}` };
  } finally {
    rl.close();
    file.destroy();
    gunzip.destroy();
  }
  if (!header || !ended) return { problem: "truncated" };
  if (cat.entries.size !== header.entries) return { problem: "duplicate entries" };
  cat.members = header.members;
  cat.contentBytes = header.contentBytes;
  return { catalogue: cat };
}
