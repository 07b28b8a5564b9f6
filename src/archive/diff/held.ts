/**
 * The content of a new-image member the one-pass delta cannot write yet (one-pass.ts): its
 * fate is undecided (the old image has not reached its path, or its SHA-256 is needed), or
 * an earlier member still blocks the delta's archive order. Small contents stay in memory;
 * big ones go to a spill file in the delta's temporary directory (one file per member, never
 * an uncompressed tarball), removed as soon as the member is written or dropped.
 */
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { unlink } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";

export class HeldContent {
  /**
   * In memory: views of the reader's chunks, not copies. A copy per member allocated as many
   * bytes as the new image holds, and the garbage collector let tens of MB of them pile up
   * (the import's peak RSS grew by ~50 MB); the chunks are allocated by the decoder's pipe
   * anyway, and a view only keeps its chunk a little longer.
   */
  private chunks: Buffer[] | undefined;
  private file: WriteStream | undefined;
  private path: string | undefined;

  /** `inMemory`: keep the bytes in memory, else spill them to `dir/spill-<id>`. */
  constructor(
    readonly size: number,
    inMemory: boolean,
    dir: string,
    id: number,
  ) {
    if (inMemory) this.chunks = [];
    else {
      this.path = join(dir, `spill-${id}`);
      this.file = createWriteStream(this.path, { flags: "wx" });
    }
  }

  /** Bytes held in memory (what the caller's memory cap counts). */
  get memoryBytes(): number {
    return this.chunks ? this.size : 0;
  }

  async append(chunk: Buffer): Promise<void> {
    if (this.chunks) this.chunks.push(chunk);
    else if (!this.file!.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const f = this.file!;
        const done = (err?: Error) => {
          f.off("drain", ok);
          f.off("error", done);
          if (err) reject(err);
          else resolve();
        };
        const ok = () => done();
        f.on("drain", ok);
        f.on("error", done);
      });
    }
  }

  /** Call once every byte has been appended. */
  async close(): Promise<void> {
    if (this.file && this.path) {
      this.file.end();
      await finished(this.file);
    }
  }

  /** The content, to write once. */
  content(): Buffer | AsyncIterable<Buffer> {
    if (this.chunks) return this.chunks.length === 1 ? this.chunks[0] : arrayChunks(this.chunks);
    return createReadStream(this.path!, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  }

  async release(): Promise<void> {
    this.chunks = undefined;
    if (this.path) {
      const p = this.path;
      this.path = undefined;
      this.file?.destroy();
      this.file = undefined;
      await unlink(p).catch(() => undefined);
    }
  }
}

async function* arrayChunks(chunks: Buffer[]): AsyncIterable<Buffer> {
  yield* chunks;
}
