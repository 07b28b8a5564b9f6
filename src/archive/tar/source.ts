/**
 * Pull-style byte reader over a stream: exact reads for headers, bounded reads for bodies.
 * Holds at most one upstream chunk, so memory does not grow with the archive.
 */
import { ArchiveError } from "../../errors.js";

/** A stream, or any async iterable of chunks (a counting wrapper, for instance). */
export type TarInput = NodeJS.ReadableStream | AsyncIterable<Buffer | string>;

export class ByteSource {
  private readonly it: AsyncIterator<Buffer | string>;
  private chunk: Buffer = Buffer.alloc(0);
  private off = 0;
  private eof = false;
  /** Bytes consumed so far (for error messages). */
  position = 0;

  constructor(input: TarInput) {
    this.it = (input as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.off >= this.chunk.length) {
      if (this.eof) return false;
      const r = await this.it.next();
      if (r.done) {
        this.eof = true;
        return false;
      }
      this.chunk = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
      this.off = 0;
    }
    return true;
  }

  /** Up to `max` bytes (at least one), or null at end of input. The slice is not copied. */
  async readSome(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const n = Math.min(max, this.chunk.length - this.off);
    const out = this.chunk.subarray(this.off, this.off + n);
    this.off += n;
    this.position += n;
    return out;
  }

  /** Exactly `n` bytes; null if the input ends before the first byte; error if it ends midway. */
  async readExact(n: number, what: string): Promise<Buffer | null> {
    const first = await this.readSome(n);
    if (first === null) return null;
    if (first.length === n) return first;
    const out = Buffer.allocUnsafe(n);
    first.copy(out);
    let got = first.length;
    while (got < n) {
      const more = await this.readSome(n - got);
      if (more === null) throw new ArchiveError(`Cannot read tar archive: unexpected end of data in ${what} at byte ${this.position}`);
      more.copy(out, got);
      got += more.length;
    }
    return out;
  }

  async skip(n: number, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      const got = await this.readSome(left);
      if (got === null) throw new ArchiveError(`Cannot read tar archive: unexpected end of data in ${what} at byte ${this.position}`);
      left -= got.length;
    }
  }

  /** Reads and discards everything left, so upstream pipelines can finish. */
  async drain(): Promise<void> {
    while ((await this.readSome(1 << 20)) !== null);
  }

  /** Stops the upstream iterator (destroys the stream) when the reader is abandoned. */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}
