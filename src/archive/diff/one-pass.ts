/**
 * The delta in ONE pass over each image (issue 8): the old image is scanned into its
 * catalogue while the new image is read once, and each new member is decided (write or
 * drop) as soon as the old catalogue can answer for its path, then streamed through the GNU
 * tar writer into xz. Rules are those of compare.ts and plan.ts; this file only schedules.
 *
 * Deciding each new member (write or drop, by speculation while the old scan lags): decide.ts.
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
import { ArchiveError, errorMessage } from "../../errors.js";
import type { XzCodec } from "../../io/xz.js";
import { readTar } from "../tar/read.js";
import { Catalogue } from "./catalogue.js";
import { compareCatalogues, type ChangeSet } from "./compare.js";
import { OnePassDecider, type DecideOptions } from "./decide.js";
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

export interface OnePassOptions extends DecideOptions {
  codec: XzCodec;
  level: number;
  /** xz block size (the delta's size is unknown until the end; see xz.ts). */
  blockSize: number;
  /** xz dictionary (build.ts deltaDict). */
  dictSize: number;
  /** Where the compressed output (`rest.xz`) and spill files go. */
  tmpDir: string;
  /** The old image's catalogue, already made (with implicit parents), or null: scan the old image. */
  oldCatalogue?: Promise<Catalogue | null>;
}

export class OnePassDelta extends OnePassDecider {
  private oldFromCatalogue = false;
  private oldError: ArchiveError | undefined;
  private wakers: (() => void)[] = [];
  protected readonly out: OrderedOutput;

  constructor(private readonly opts: OnePassOptions) {
    super(opts);
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
function imageError(err: unknown, path: string): ArchiveError {
  if (err instanceof ArchiveError && err.message.includes(path)) return err;
  return new ArchiveError(`Cannot read image '${path}': ${errorMessage(err).replace(/^Cannot read tar archive: /, "")}`, "Exception", {
    cause: err,
  });
}
