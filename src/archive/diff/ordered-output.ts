/**
 * The one-pass delta's output side (decide.ts decides, this writes): members leave in the
 * new image's archive order (plan.ts) through the GNU tar writer into xz (`rest.xz`). A
 * member behind an undecided one waits in the queue; its content is held meanwhile (in
 * memory up to the caller's cap, bigger contents spilled to the temporary directory,
 * held.ts). A hard link whose target is written but not yet emitted is held back until the
 * target has been written (client-protocol §8.3: tar links to what is already on disk).
 */
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { XzCodec } from "../../io/xz.js";
import type { TarHeader } from "../tar/types.js";
import { GnuTarWriter } from "../tar/write.js";
import { HeldContent } from "./held.js";

/** A member of the new image on its way through the one-pass delta. */
export interface Item {
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

/** What the output asks the deciding side. */
export interface Decisions {
  /** The one-pass output is discarded: stop writing. */
  failed(): boolean;
  /** A hard link's target whose fate is not known yet (the link must wait in place). */
  pending(target: string): boolean;
  /** A path decided to be written in the delta. */
  inDelta(target: string): boolean;
}

export interface OutputOptions {
  codec: XzCodec;
  level: number;
  blockSize: number;
  /** xz dictionary (build.ts deltaDict). */
  dictSize: number;
  tmpDir: string;
}

export class OrderedOutput {
  /** Names written, in order. */
  readonly written: string[] = [];
  /** Held content bytes in memory. */
  heldBytes = 0;
  private spills = 0;
  private readonly queue: (Item | undefined)[] = [];
  private head = 0;
  private readonly emitted = new Set<string>();
  private readonly linkHold = new Map<string, Item[]>();
  private readonly writer: GnuTarWriter;
  private readonly compressor: Duplex;
  private readonly compressed: Promise<void>;

  constructor(
    private readonly opts: OutputOptions,
    private readonly decisions: Decisions,
  ) {
    this.compressor = opts.codec.compress({ level: opts.level, blockSize: opts.blockSize, dictSize: opts.dictSize });
    this.compressed = pipeline(this.compressor, createWriteStream(join(opts.tmpDir, "rest.xz"), { flags: "wx" }));
    this.compressed.catch(() => undefined); // awaited in finish()/abort()
    this.writer = new GnuTarWriter(this.compressor);
  }

  /** Nothing waits in the queue: a decided member may be written straight away. */
  get idle(): boolean {
    return this.head === this.queue.length;
  }

  get bytesWritten(): number {
    return this.writer.bytesWritten;
  }

  get stopped(): boolean {
    return this.compressor.destroyed;
  }

  /** Queues a member that is (or may be) written, unless it has been written already. */
  push(item: Item): void {
    if (!this.emitted.has(item.name)) this.queue.push(item);
  }

  /** Starts holding a member's content (memory if `inMemory`, else a spill file). */
  hold(item: Item, inMemory: boolean): HeldContent {
    const held = new HeldContent(item.header.size, inMemory, this.opts.tmpDir, this.spills++);
    item.held = held;
    this.heldBytes += held.memoryBytes;
    return held;
  }

  /** A held member that is not written after all. */
  drop(item: Item): void {
    this.heldBytes -= item.held!.memoryBytes;
    void item.held!.release();
    delete item.held;
  }

  /** Writes the decided members at the head of the queue, in archive order (plan.ts). */
  async flush(): Promise<void> {
    while (!this.decisions.failed() && this.head < this.queue.length) {
      const it = this.queue[this.head]!;
      if (it.write === undefined) return;
      if (it.write) {
        const target = it.header.type === "link" ? it.header.linkname : undefined;
        if (target !== undefined && target !== it.name) {
          if (this.decisions.pending(target)) return;
          if (this.decisions.inDelta(target) && !this.emitted.has(target)) {
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

  /** Writes a member (`content` streaming, else what it holds), then the hard links that waited for it. */
  async emit(item: Item, content?: AsyncIterable<Buffer>): Promise<void> {
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
        for (let i = released.length - 1; i >= 0; i--) stack.push(released[i]);
      }
    }
  }

  /** Stops spending CPU on output that is discarded: the compressor and every held content. */
  stop(): void {
    if (this.compressor.destroyed) return;
    this.compressor.destroy();
    for (const it of this.queue.slice(this.head)) void it?.held?.release();
  }

  /** Ends the tar (after `precededBy` bytes written elsewhere), waits for `rest.xz`; returns the bytes written. */
  async finish(precededBy: number): Promise<number> {
    await this.writer.finish({ precededBy });
    await this.compressed;
    return this.writer.bytesWritten;
  }

  async abort(): Promise<void> {
    this.compressor.destroy();
    await this.compressed.catch(() => undefined);
  }
}
