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
 * bigger contents spilled to the temporary directory): ordered-output.ts. When held memory
 * is full the new reader waits for the old scan, which never waits.
 *
 * The old image's catalogue may come from its sidecar instead (generators/delta.ts,
 * `oldCatalogue`): the old "scan" then finishes as soon as that promise does, without
 * decompressing the old image; if it gives null, the old image is scanned as usual.
 *
 * Verification: at the end both catalogues are complete, and compare.ts + plan.ts give the
 * canonical member list. If what was written differs (a speculation proved wrong, a path
 * duplicated in an image, a hard-link cycle), the one-pass output is dropped and the delta is
 * written by a second pass over the new image (delta.ts, writeDeltaTar): the result is always
 * the canonical delta; only the time differs.
 */
import { createHash } from "node:crypto";
import type { DeltaMtimePolicy } from "../../config/types.js";
import { ArchiveError, errorMessage } from "../../errors.js";
import type { XzCodec } from "../../io/xz.js";
import { readTar } from "../tar/read.js";
import { Catalogue, type CatalogueEntry } from "./catalogue.js";
import { compareCatalogues, entryChanged, type ChangeSet } from "./compare.js";
import { OrderedOutput, type Item } from "./ordered-output.js";
import { planMemberOrder } from "./plan.js";
import { openImageTar } from "./scan.js";

/** Held member content kept in memory, over all held members. */
export const HELD_MEMORY = 16 << 20;
/** A single member's content above this is spilled to disk when it must be held. */
const ITEM_MEMORY = 8 << 20;

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
  /** Whether the old catalogue came from `oldCatalogue` (the old image was not read). */
  oldFromCatalogue: boolean;
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
  /** What counts as a change (compare.ts); default "content". */
  mtime?: DeltaMtimePolicy;
  /** The old image's catalogue, already made (with implicit parents), or null: scan the old image. */
  oldCatalogue?: Promise<Catalogue | null>;
}

export class OnePassDelta {
  oldCat = new Catalogue();
  private oldFromCatalogue = false;
  private readonly policy: DeltaMtimePolicy;
  readonly newCat = new Catalogue();
  private oldDone = false;
  private newDone = false;
  private oldError: unknown;
  private wakers: (() => void)[] = [];
  private readonly undecided = new Map<string, Item>();
  /** Undecided only for want of the old scan, in new-archive order. */
  private readonly waitingForOld = new Map<string, Item>();
  private readonly linkWaiters = new Map<string, Item[]>();
  private readonly writeSet = new Set<string>();
  /** Decided "added" by speculation: the old scan must not name them later. */
  private readonly speculated = new Set<string>();
  private speculate: boolean;
  private maxNew = -1;
  private maxOld = -1;
  private failure: string | undefined;
  private readonly out: OrderedOutput;

  constructor(private readonly opts: OnePassOptions) {
    this.speculate = opts.speculate ?? true;
    this.policy = opts.mtime ?? "content";
    this.out = new OrderedOutput(opts, {
      failed: () => this.failure !== undefined,
      pending: (target) => this.undecided.has(target) || (!this.newCat.has(target) && !this.newDone),
      inDelta: (target) => this.writeSet.has(target),
    });
  }

  async run(oldPath: string, newPath: string): Promise<OnePassResult> {
    const old = this.scanOld(oldPath);
    old.catch(() => undefined); // awaited below; the new reader learns of it through oldError
    try {
      await this.readNew(newPath);
    } catch (err) {
      this.out.stop();
      await old.catch(() => undefined);
      throw err;
    }
    await old;
    const written = this.out.written;
    if (written.length !== this.writeSet.size) this.fail("members are still held (a hard-link cycle?)");
    this.oldCat.addImplicitParents();
    this.newCat.addImplicitParents();
    const changes = compareCatalogues(this.oldCat, this.newCat, this.policy);
    const canonical = planMemberOrder(this.newCat, changes.write);
    if (canonical.length !== written.length || canonical.some((n, i) => n !== written[i])) {
      this.fail("a speculation proved wrong (the images list their paths in different orders)");
    }
    this.stopWriting();
    return {
      oldCat: this.oldCat,
      newCat: this.newCat,
      changes,
      canonical,
      written,
      bytesWritten: this.out.bytesWritten,
      oldFromCatalogue: this.oldFromCatalogue,
      complete: !this.failure,
      ...(this.failure ? { why: this.failure } : {}),
      finish: (precededBy) => this.out.finish(precededBy),
      abort: () => this.out.abort(),
    };
  }

  /** Marks the one-pass output as discarded; the new reader stops writing (stopWriting). */
  private fail(why: string): void {
    this.failure ??= why;
  }

  /** After a failure, between members: stop spending CPU on output that is discarded. */
  private stopWriting(): void {
    if (this.failure) this.out.stop();
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
      const stored = this.opts.oldCatalogue ? await this.opts.oldCatalogue : null;
      if (stored) {
        // Nothing was paired or speculated yet (the old side knew no path): adopting the
        // whole catalogue at once is the old scan finishing in one step.
        this.oldCat = stored;
        this.oldFromCatalogue = true;
        return;
      }
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
    if (!entryChanged(this.oldCat.get(name)!, b, this.policy)) this.fail(`a speculation proved wrong ('${name}' is in the old image after all)`);
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
      // With the "content" policy an mtime-only difference is no difference: such a file
      // waits for its SHA-256 like one whose metadata is all equal.
      if (entryChanged(a, { ...b, sha256: a.sha256 } as CatalogueEntry, this.policy)) this.decide(item, true);
      return;
    }
    if (entryChanged(a, b, this.policy)) return this.decide(item, true);
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
    else if (item.held) this.out.drop(item);
    const links = this.linkWaiters.get(item.name);
    if (links) {
      this.linkWaiters.delete(item.name);
      for (const l of links) this.tryDecide(l);
    }
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
        if (item.write !== false) this.out.push(item);
        await this.out.flush();
        if (this.oldError) throw this.oldError;
      }
      this.newDone = true;
      for (const [target, items] of [...this.linkWaiters]) {
        if (this.newCat.has(target)) continue;
        this.linkWaiters.delete(target);
        for (const l of items) this.tryDecide(l);
      }
      for (;;) {
        await this.out.flush();
        if (this.failure || this.out.idle || this.oldDone) break;
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
    while (!this.oldDone && size <= ITEM_MEMORY && this.out.heldBytes + size > HELD_MEMORY && this.waitingForOld.size > 0) {
      await this.waitOld();
      await this.out.flush();
    }
    if (item.write === true && this.out.idle && !this.failure) {
      const hashing = async function* () {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          hash.update(chunk);
          yield chunk;
        }
      };
      await this.out.emit(item, hashing());
    } else {
      const held = this.out.hold(item, size <= ITEM_MEMORY && this.out.heldBytes + size <= HELD_MEMORY);
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
