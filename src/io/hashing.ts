/**
 * SHA-256 while bytes pass: a PassThrough that hashes and counts everything written through
 * it, so a pool file (or a tar member) is checksummed as it is written, never re-read
 * (server-reference §8.2: `checksum` is the SHA-256 hex of the whole file).
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback, type Readable } from "node:stream";

export class HashingStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  private hex: string | undefined;
  /** Bytes seen so far. */
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.hex = this.hash.digest("hex");
    done();
  }

  /** SHA-256 hex of everything that passed; only once the stream has ended. */
  get sha256(): string {
    if (this.hex === undefined) throw new Error("Cannot read sha256: the stream has not finished");
    return this.hex;
  }

  /** True once the digest is available. */
  get finished(): boolean {
    return this.hex !== undefined;
  }
}

/** SHA-256 hex and byte count of a whole stream, consuming it. */
export async function hashStream(input: Readable | AsyncIterable<Buffer>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest("hex"), bytes };
}
