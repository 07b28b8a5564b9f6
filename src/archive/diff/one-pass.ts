/**
 * The delta in ONE pass over each image (issue 8): the old image is scanned into its
 * catalogue while the new image is read once, and each new member is decided (write or
 * drop) as soon as the old catalogue can answer for its path, then streamed through the GNU
 * tar writer into xz. Rules are those of compare.ts and plan.ts; this file only schedules.
 *
 * Deciding a new member P:
 *   - the old scan has seen P: compare.ts's entryChanged(); a regular file whose metadata
 *     is equal waits for its SHA-256 (computed while its content streams past, held until
 *     then); a hard link whose own entry is equal follows its target (LP #1444347);
 *   - the old scan has finished without P: added;
 *   - the old scan has gone past P without seeing it: added, by SPECULATION. Both readers
 *     note every path both have seen; while those pairs come in the same order in both
 *     images (rootfs builds of one tree), "old went past P" means "old has no P". The first
 *     pair out of order turns speculation off for the rest of the run.
 * Members are written in the new image's archive order (plan.ts), hard links held until
 * their target is written; a member behind an undecided one is held (in memory up to a cap,
 * bigger contents spilled to the temporary directory, held.ts), and when held memory is full
 * the new reader waits for the old scan, which never waits.
 *
 * Verification: at the end both catalogues are complete, and compare.ts + plan.ts give the
 * canonical member list. If what was written differs (a speculation proved wrong, a path
 * duplicated in an image, a hard-link cycle), the one-pass output is dropped and the delta is
 * written by a second pass over the new image (delta.ts, writeDeltaTar): the result is always
 * the canonical delta; only the time differs.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { ArchiveError, errorMessage } from "../../errors.js";
import type { XzCodec } from "../../io/xz.js";
import { readTar } from "../tar/read.js";
import type { TarHeader } from "../tar/types.js";
import { GnuTarWriter } from "../tar/write.js";
import { Catalogue, type CatalogueEntry } from "./catalogue.js";
import { compareCatalogues, entryChanged, type ChangeSet } from "./compare.js";
import { HeldContent } from "./held.js";
import { planMemberOrder } from "./plan.js";
import { openImageTar } from "./scan.js";

/** Held member content kept in memory, over all held members. */
export const HELD_MEMORY = 16 << 20;
/** A single member's content above this is spilled to disk when it must be held. */
const ITEM_MEMORY = 8 << 20;

interface Item {
  name: string;
  header: TarHeader;
  ordinal: number;
  row: number;
  /** Content read and hashed (always true for members without content). */
  hashed: boolean;
  held?: HeldContent;
  /** undefined: not decided yet. */
  write?: boolean;
}

export interface OnePassResult {
  oldCat: Catalogue;
  newCat: Catalogue;
  /** compare.ts on the complete catalogues, and plan.ts's member order from it. */
  changes: ChangeSet;
  canonical: string[];
  /** Names written after `removed`, in order (valid when `complete`). */
  written: string[];
  /** Uncompressed bytes written to the compressor (without `removed`). */
  bytesWritten: number;
  /** False when the one-pass output must be discarded (see module comment); `why` says why. */
  complete: boolean;
  why?: string;
  /** Ends the tar (after `precededBy` bytes written elsewhere), waits for the compressed file; returns the uncompressed bytes written. */
  finish(precededBy: number): Promise<number>;
  /** Stops the compressor (output discarded). */
  abort(): Promise<void>;
}

export interface OnePassOptions {
  codec: XzCodec;
  level: number;
  /** xz block size (the delta's size is unknown until the end; see xz.ts). */
  blockSize: number;
  /** Where the compressed output (`rest.xz`) and spill files go. */
  tmpDir: string;
  /** Tests: turn speculation off. */
  speculate?: boolean;
}

export class OnePassDelta {
  readonly oldCat = new Catalogue();
  readonly newCat = new Catalogue();
  private oldDone = false;
  private newDone = false;
  private oldError: unknown;
  private wakers: (() => void)[] = [];
  private readonly queue: (Item | undefined)[] = [];
  private head = 0;
  private readonly undecided = new Map<string, Item>();
  /** Undecided only for want of the old scan, in new-archive order. */
  private readonly waitingForOld = new Map<string, Item>();
  private readonly linkWaiters = new Map<string, Item[]>();
  private readonly writeSet = new Set<string>();
  private readonly emitted = new Set<string>();
  private readonly linkHold = new Map<string, Item[]>();
  private readonly written: string[] = [];
  /** Decided "added" by speculation: the old scan must not name them later. */
  private readonly speculated = new Set<string>();
  private heldBytes = 0;
  private spills = 0;
  private speculate: boolean;
  private maxNew = -1;
  private maxOld = -1;
  private failure: string | undefined;
  private readonly writer: GnuTarWriter;
  private readonly compressor;
  private readonly compressed: Promise<void>;

  constructor(private readonly opts: OnePassOptions) {
    this.speculate = opts.speculate ?? true;
    this.compressor = opts.codec.compress({ level: opts.level, blockSize: opts.blockSize });
    this.compressed = pipeline(this.compressor, createWriteStream(join(opts.tmpDir, "rest.xz"), { flags: "wx" }));
    this.compressed.catch(() => undefined); // awaited in finish()/abort()
    this.writer = new GnuTarWriter(this.compressor);
  }

  async run(oldPath: string, newPath: string): Promise<OnePassResult> {
    const old = this.scanOld(oldPath);
    old.catch(() => undefined); // awaited below; the new reader learns of it through oldError
    try {
      await this.readNew(newPath);
    } catch (err) {
      this.compressor.destroy();
      await old.catch(() => undefined);
      throw err;
    }
    await old;
    if (this.written.length !== this.writeSet.size) this.fail("members are still held (a hard-link cycle?)");
    this.oldCat.addImplicitParents();
    this.newCat.addImplicitParents();
    const changes = compareCatalogues(this.oldCat, this.newCat);
    const canonical = planMemberOrder(this.newCat, changes.write);
    if (canonical.length !== this.written.length || canonical.some((n, i) => n !== this.written[i])) {
      this.fail("a speculation proved wrong (the images list their paths in different orders)");
    }
    this.stopWriting();
    return {
      oldCat: this.oldCat,
      newCat: this.newCat,
      changes,
      canonical,
      written: this.written,
      bytesWritten: this.writer.bytesWritten,
      complete: !this.failure,
      ...(this.failure ? { why: this.failure } : {}),
      finish: async (precededBy) => {
        await this.writer.finish({ precededBy });
        await this.compressed;
        return this.writer.bytesWritten;
      },
      abort: async () => {
        this.compressor.destroy();
        await this.compressed.catch(() => undefined);
      },
    };
  }

  /** Marks the one-pass output as discarded; the new reader stops writing (stopWriting). */
  private fail(why: string): void {
    this.failure ??= why;
  }

  /** After a failure, between members: stop spending CPU on output that is discarded. */
  private stopWriting(): void {
    if (!this.failure || this.compressor.destroyed) return;
    this.compressor.destroy();
    for (const it of this.queue.slice(this.head)) void it?.held?.release();
  }

  private notify(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private async waitOld(): Promise<void> {
    if (this.oldDone) return;
    await new Promise<void>((resolve) => this.wakers.push(resolve));
    if (this.oldError) throw this.oldError;
  }

  private async scanOld(path: string): Promise<void> {
    try {
      for await (const { header, body } of readTar(await openImageTar(path))) {
        let digest: Buffer | undefined;
        if (header.type === "file") {
          const hash = createHash("sha256");
          for await (const chunk of body) hash.update(chunk as Buffer);
          digest = hash.digest();
        }
        this.oldCat.add(header, digest);
        const n = this.newCat.ordinal(header.name);
        if (n !== undefined) {
          if (this.speculated.has(header.name)) this.checkSpeculation(header.name);
          this.pair(n, this.oldCat.ordinal(header.name)!);
          const item = this.undecided.get(header.name);
          if (item) this.tryDecide(item);
        }
        this.notify();
      }
    } catch (err) {
      this.oldError = imageError(err, path);
      throw this.oldError;
    } finally {
      this.oldDone = true;
      for (const item of [...this.waitingForOld.values()]) this.tryDecide(item);
      this.notify();
    }
  }

  /** A path both readers have seen, at these positions: moves the speculation frontier. */
  private pair(n: number, o: number): void {
    if (n < this.maxNew || o < this.maxOld) this.speculate = false;
    this.maxNew = Math.max(this.maxNew, n);
    this.maxOld = Math.max(this.maxOld, o);
    if (!this.speculate) return;
    for (const item of this.waitingForOld.values()) {
      if (item.ordinal >= this.maxNew) break; // new-archive order: the rest is further on
      this.tryDecide(item);
    }
  }

  /**
   * The old image has a path written as "added" by speculation: harmless if it is changed
   * anyway, else the one-pass output is not the canonical delta (decided early to save CPU).
   */
  private checkSpeculation(name: string): void {
    const b = this.newCat.get(name)!;
    if (b.type === "file" && b.sha256 === undefined) return; // still streaming: the final check decides
    if (!entryChanged(this.oldCat.get(name)!, b)) this.fail(`a speculation proved wrong ('${name}' is in the old image after all)`);
  }

  private tryDecide(item: Item): void {
    if (item.write !== undefined || this.failure) return;
    const a = this.oldCat.get(item.name);
    if (!a) {
      if (this.oldDone) return this.decide(item, true);
      if (this.speculate && item.ordinal < this.maxNew) {
        this.speculated.add(item.name);
        return this.decide(item, true);
      }
      this.waitingForOld.set(item.name, item);
      return;
    }
    this.waitingForOld.delete(item.name);
    const b = this.newCat.get(item.name)!;
    if (!item.hashed) {
      // Content still streaming: decidable now only if the metadata alone differs.
      if (entryChanged(a, { ...b, sha256: a.sha256 } as CatalogueEntry)) this.decide(item, true);
      return;
    }
    if (entryChanged(a, b)) return this.decide(item, true);
    const target = b.type === "link" ? b.linkname : undefined;
    if (target === undefined || target === item.name) return this.decide(item, false);
    // LP #1444347: an unchanged hard link is rewritten with its target (compare.ts).
    if (this.newCat.has(target) && !this.undecided.has(target)) return this.decide(item, this.writeSet.has(target));
    if (!this.newCat.has(target) && this.newDone) return this.decide(item, false);
    const list = this.linkWaiters.get(target);
    if (list) list.push(item);
    else this.linkWaiters.set(target, [item]);
  }

  private decide(item: Item, write: boolean): void {
    item.write = write;
    this.undecided.delete(item.name);
    this.waitingForOld.delete(item.name);
    if (write) this.writeSet.add(item.name);
    else if (item.held) this.drop(item);
    const links = this.linkWaiters.get(item.name);
    if (links) {
      this.linkWaiters.delete(item.name);
      for (const l of links) this.tryDecide(l);
    }
  }

  private drop(item: Item): void {
    this.heldBytes -= item.held!.memoryBytes;
    void item.held!.release();
    delete item.held;
  }

  private async readNew(path: string): Promise<void> {
    try {
      for await (const { header, body } of readTar(await openImageTar(path))) {
        const ordinal = this.newCat.members;
        if (this.newCat.has(header.name)) this.fail(`'${header.name}' occurs twice in the new image`);
        if (this.failure) {
          this.stopWriting();
          // Catalogue only: the second pass writes the delta.
          this.newCat.add(header, header.type === "file" ? await sha256Of(body) : undefined);
          continue;
        }
        const row = this.newCat.add(header);
        const item: Item = { name: header.name, header, ordinal, row, hashed: header.type !== "file" };
        this.undecided.set(item.name, item);
        const o = this.oldCat.ordinal(item.name);
        if (o !== undefined) this.pair(ordinal, o);
        this.tryDecide(item);
        if (header.type === "file") await this.readContent(item, body);
        // Dropped members need no place in the order; written ones keep theirs.
        if (item.write !== false && !this.emitted.has(item.name)) this.queue.push(item);
        await this.flush();
        if (this.oldError) throw this.oldError;
      }
      this.newDone = true;
      for (const [target, items] of [...this.linkWaiters]) {
        if (this.newCat.has(target)) continue;
        this.linkWaiters.delete(target);
        for (const l of items) this.tryDecide(l);
      }
      for (;;) {
        await this.flush();
        if (this.failure || this.head === this.queue.length || this.oldDone) break;
        await this.waitOld();
      }
    } catch (err) {
      throw err === this.oldError ? err : imageError(err, path);
    }
  }

  /** Streams a file's content: straight into the delta when it can be written now, else held. */
  private async readContent(item: Item, body: AsyncIterable<unknown>): Promise<void> {
    const size = item.header.size;
    const hash = createHash("sha256");
    // Held memory full while the old scan lags: wait for it rather than hold more (a member
    // too big to hold in memory anyway is spilled at once, never waited for).
    while (!this.oldDone && size <= ITEM_MEMORY && this.heldBytes + size > HELD_MEMORY && this.waitingForOld.size > 0) {
      await this.waitOld();
      await this.flush();
    }
    if (item.write === true && this.head === this.queue.length && !this.failure) {
      const hashing = async function* () {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          hash.update(chunk);
          yield chunk;
        }
      };
      await this.emit(item, hashing());
    } else {
      const inMemory = size <= ITEM_MEMORY && this.heldBytes + size <= HELD_MEMORY;
      const held = new HeldContent(size, inMemory, this.opts.tmpDir, this.spills++);
      item.held = held;
      this.heldBytes += held.memoryBytes;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        if (item.held) await held.append(chunk); // dropped meanwhile: only hash
      }
      await held.close();
    }
    this.newCat.setSha256(item.row, hash.digest());
    item.hashed = true;
    this.tryDecide(item);
  }

  /** Writes the decided members at the head of the queue, in archive order (plan.ts). */
  private async flush(): Promise<void> {
    while (!this.failure && this.head < this.queue.length) {
      const it = this.queue[this.head]!;
      if (it.write === undefined) return;
      if (it.write) {
        const target = it.header.type === "link" ? it.header.linkname : undefined;
        if (target !== undefined && target !== it.name) {
          if (this.undecided.has(target) || (!this.newCat.has(target) && !this.newDone)) return;
          if (this.writeSet.has(target) && !this.emitted.has(target)) {
            const list = this.linkHold.get(target);
            if (list) list.push(it);
            else this.linkHold.set(target, [it]);
            this.queue[this.head++] = undefined;
            continue;
          }
        }
        await this.emit(it);
      }
      this.queue[this.head++] = undefined;
      if (this.head >= 4096) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
    }
  }

  /** Writes a member, then the hard links that waited for it (plan.ts's order). */
  private async emit(item: Item, content?: AsyncIterable<Buffer>): Promise<void> {
    const stack = [item];
    while (stack.length > 0) {
      const it = stack.pop()!;
      if (it === item && content) await this.writer.add(it.header, content);
      else if (it.held) {
        await this.writer.add(it.header, it.held.content());
        this.heldBytes -= it.held.memoryBytes;
        await it.held.release();
        delete it.held;
      } else await this.writer.add(it.header);
      this.written.push(it.name);
      this.emitted.add(it.name);
      const released = this.linkHold.get(it.name);
      if (released) {
        this.linkHold.delete(it.name);
        for (let i = released.length - 1; i >= 0; i--) stack.push(released[i]!);
      }
    }
  }
}

async function sha256Of(body: AsyncIterable<unknown>): Promise<Buffer> {
  const hash = createHash("sha256");
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest();
}

/** Errors name the image (as scan.ts does). */
function imageError(err: unknown, path: string): unknown {
  if (err instanceof ArchiveError && err.message.includes(path)) return err;
  return new ArchiveError(`Cannot read image '${path}': ${errorMessage(err).replace(/^Cannot read tar archive: /, "")}`, "Exception", { cause: err });
}
