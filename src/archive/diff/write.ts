/**
 * Writing a planned delta (server-reference §6.4) from ONE sequential read of the new image:
 * the plan (compare.ts + plan.ts) names every member and its order, so each member's header
 * and content stream straight from the new image into the tar writer; only hard links that
 * wait for their target are held (headers, no content). Used when both catalogues are known
 * in advance (stored sidecars) and as the one-pass delta's second pass (one-pass.ts).
 */
import type { Writable } from "node:stream";
import { ArchiveError } from "../../errors.js";
import { BLOCK } from "../tar/header.js";
import { readTar } from "../tar/read.js";
import type { TarHeader } from "../tar/types.js";
import { encodeGnuHeader, GnuTarWriter } from "../tar/write.js";
import type { ImageDiff } from "./delta.js";
import { removedContent } from "./plan.js";
import { openImageTar } from "./scan.js";

/** The `removed` member (§6.4): regular file, 0644, root:root, mtime now. */
export function removedHeader(content: Buffer, now: Date): TarHeader {
  return {
    name: "removed",
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: "root",
    gname: "root",
    mtime: Math.floor(now.getTime() / 1000),
    size: content.length,
    typeflag: "0",
  };
}

/** The `removed` member as tar bytes (header, content, padding): the delta's first block. */
export function removedMember(removed: readonly string[], now: Date): Buffer {
  const content = removedContent(removed);
  return Buffer.concat([encodeGnuHeader(removedHeader(content, now)), content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK)]);
}

/** Every planned member after `removed`, in `diff.order`, read once from `newPath` (not finished). */
export async function writeMembers(newPath: string, diff: ImageDiff, writer: GnuTarWriter): Promise<void> {
  const { order, newCat } = diff;
  const wanted = new Set(order);
  const held = new Map<string, TarHeader>();
  let next = 0;
  const flushHeld = async (): Promise<void> => {
    while (next < order.length && held.has(order[next]!)) {
      const name = order[next++]!;
      await writer.add(held.get(name)!);
      held.delete(name);
    }
  };
  let ordinal = 0;
  for await (const { header, body } of readTar(await openImageTar(newPath))) {
    const i = ordinal++;
    // Only the last occurrence of a path counts (§6.1); the reader drains skipped bodies.
    if (!wanted.has(header.name) || newCat.get(header.name)?.ordinal !== i) continue;
    if (order[next] === header.name) {
      next++;
      await writer.add(header, body);
      await flushHeld();
    } else if (header.size === 0) {
      held.set(header.name, header); // a hard link waiting for its target (plan.ts)
    } else {
      throw new ArchiveError(`Cannot write delta: '${header.name}' is out of order in '${newPath}'`);
    }
  }
  await flushHeld();
  if (next !== order.length) {
    throw new ArchiveError(`Cannot write delta: '${newPath}' changed while it was read ('${order[next]}' is missing)`);
  }
}

/** The whole uncompressed delta tar to `out` (ended when done); returns its size. */
export async function writeDeltaTar(newPath: string, diff: ImageDiff, out: Writable, now = new Date()): Promise<number> {
  const writer = new GnuTarWriter(out);
  const removed = removedContent(diff.changes.removed);
  await writer.add(removedHeader(removed, now), removed);
  await writeMembers(newPath, diff, writer);
  await writer.finish();
  return writer.bytesWritten;
}

const RECORD = 20 * BLOCK;
const blocks = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/**
 * The size of the tar writeDeltaTar will write for `diff`, from the plan alone.
 * GNU long-name records are counted; exact for archives the writer can write at all.
 */
export function deltaTarSize(diff: ImageDiff): number {
  const longRecord = (s: string) => (Buffer.byteLength(s, "utf8") > 100 ? BLOCK + blocks(Buffer.byteLength(s, "utf8") + 1) : 0);
  let n = BLOCK + blocks(removedContent(diff.changes.removed).length);
  for (const name of diff.order) {
    const e = diff.newCat.get(name)!;
    const link = e.type === "link" || e.type === "symlink" ? (e.linkname ?? "") : "";
    n += BLOCK + longRecord(e.type === "directory" ? `${name}/` : name) + longRecord(link) + (e.type === "file" ? blocks(e.size) : 0);
  }
  n += 2 * BLOCK;
  return n + ((RECORD - (n % RECORD)) % RECORD);
}
