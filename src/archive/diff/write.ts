/**
 * Writing a planned delta (server-reference §6.4) from ONE sequential read of the new image:
 * the plan (compare.ts + plan.ts) names every member and its order, so each member's header
 * and content stream straight from the new image into the tar writer when it is its turn.
 * A member that arrives before its turn (hard links waiting for their target; files that
 * plan.ts moved to their stem group) is held until then: headers and small contents in
 * memory (HELD_MEMORY over all of them), bigger ones spilled to the delta's temporary
 * directory (held.ts), so memory does not grow with the image or the delta. Used when both
 * catalogues are known in advance (stored sidecars) and as the one-pass delta's second pass.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { ArchiveError } from "../../errors.js";
import { BLOCK } from "../tar/header.js";
import { readTar } from "../tar/read.js";
import type { TarHeader } from "../tar/types.js";
import { encodeGnuHeader, GnuTarWriter } from "../tar/write.js";
import type { ImageDiff } from "./compare.js";
import { HeldContent } from "./held.js";
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

/** Content held in memory over all held members; more is spilled (held.ts). */
export const WRITE_HELD_MEMORY = 16 << 20;
/** A single held content above this is spilled. */
const WRITE_ITEM_MEMORY = 4 << 20;

interface HeldMember {
  header: TarHeader;
  content?: HeldContent;
}

/**
 * Every planned member after `removed`, in `diff.order`, read once from `newPath` (not
 * finished). `tmpDir`: an empty directory for spilled contents (left empty).
 */
export async function writeMembers(newPath: string, diff: ImageDiff, writer: GnuTarWriter, tmpDir: string): Promise<void> {
  const { order, newCat } = diff;
  // Its own directory: a one-pass run before this second pass used the same names (held.ts).
  const spillDir = await mkdtemp(join(tmpDir, "held-"));
  const wanted = new Set(order);
  const held = new Map<string, HeldMember>();
  let heldMemory = 0;
  let spills = 0;
  let next = 0;
  const flushHeld = async (): Promise<void> => {
    for (let h = held.get(order[next]); next < order.length && h; h = held.get(order[next])) {
      held.delete(order[next++]);
      heldMemory -= h.content?.memoryBytes ?? 0;
      try {
        await writer.add(h.header, h.content?.content());
      } finally {
        await h.content?.release();
      }
    }
  };
  try {
    let ordinal = 0;
    for await (const { header, body } of readTar(await openImageTar(newPath))) {
      const i = ordinal++;
      // Only the last occurrence of a path counts (§6.1); the reader drains skipped bodies.
      if (!wanted.has(header.name) || newCat.get(header.name)?.ordinal !== i) continue;
      if (order[next] === header.name) {
        next++;
        await writer.add(header, body);
        await flushHeld();
        continue;
      }
      const member: HeldMember = { header };
      held.set(header.name, member);
      if (header.size > 0) {
        const inMemory = header.size <= WRITE_ITEM_MEMORY && heldMemory + header.size <= WRITE_HELD_MEMORY;
        member.content = new HeldContent(header.size, inMemory, spillDir, spills++);
        heldMemory += member.content.memoryBytes;
        for await (const chunk of body) await member.content.append(chunk as Buffer);
        await member.content.close();
      }
    }
    await flushHeld();
  } finally {
    for (const h of held.values()) await h.content?.release();
    await rm(spillDir, { recursive: true, force: true });
  }
  if (next !== order.length) {
    throw new ArchiveError(`Cannot write delta: '${newPath}' changed while it was read ('${order[next]}' is missing)`);
  }
}

/** The whole uncompressed delta tar to `out` (ended when done); returns its size. */
export async function writeDeltaTar(newPath: string, diff: ImageDiff, out: Writable, now = new Date()): Promise<number> {
  const writer = new GnuTarWriter(out);
  const removed = removedContent(diff.changes.removed);
  await writer.add(removedHeader(removed, now), removed);
  const tmpDir = await mkdtemp(join(tmpdir(), "si-delta-"));
  try {
    await writeMembers(newPath, diff, writer, tmpDir);
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
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
