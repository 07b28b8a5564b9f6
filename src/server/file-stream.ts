/**
 * Streams a byte range of an open file to a response, with memory bounded per worker.
 *
 * One chunk is read, written, and the next read waits for the write's callback (the socket
 * took it): backpressure, so a response never has more than one chunk queued. What a chunk
 * may cost is bounded twice (issue 14.2: 8,000 clients that never read grew two workers
 * to 1 GB each, one 256 KiB chunk stuck per connection):
 *
 * - Large chunks (`chunkSize`, 256 KiB by default: measured fastest) come from a per-worker
 *   pool of reused buffers, at most LARGE_BUDGET bytes of them lent at once. fs.ReadStream
 *   allocated a fresh buffer per chunk, and the garbage collections they triggered doubled
 *   our CPU per byte; a pool has no allocation per chunk or per response.
 * - When the pool is lent out, or this response's client was slow to take its last chunk
 *   (SLOW_WRITE_MS), the response goes on with chunks of SMALL_CHUNK, the size of a socket's
 *   high-water mark. So whatever the number of stuck clients, a worker holds at most
 *   LARGE_BUDGET plus one small chunk per connection (and connections are capped:
 *   serve_max_connections).
 * - A write that does not complete within `sendTimeoutMs` (serve_send_timeout: the client
 *   took nothing in that time) ends the response and its connection.
 */
import { close, read } from "node:fs";
import type { ServerResponse } from "node:http";

/** A net.Socket's default writableHighWaterMark. */
export const SMALL_CHUNK = 16 * 1024;
/** Bytes of large chunks a worker may have lent out at once (reads and queued writes). */
export const LARGE_BUDGET = 16 * 1024 * 1024;
/** A client that took longer than this for one chunk gets small chunks from then on. */
const SLOW_WRITE_MS = 5_000;
/** Free large buffers kept for reuse; the rest go back to the allocator. */
const POOL_KEEP = 16;

/** Reused large buffers of one size, with the budget of how many may be out. */
class ChunkPool {
  private readonly free: Buffer[] = [];
  private lent = 0;
  constructor(
    readonly size: number,
    private readonly max: number,
  ) {}

  take(): Buffer | undefined {
    if (this.lent >= this.max) return undefined;
    this.lent++;
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  /** `reusable`: the socket is done with it (write callback). Else it is only dropped. */
  give(buf: Buffer, reusable: boolean): void {
    this.lent--;
    if (reusable && this.free.length < POOL_KEEP) this.free.push(buf);
  }
}

const pools = new Map<number, ChunkPool>();
const poolOf = (size: number) => {
  let p = pools.get(size);
  if (!p) pools.set(size, (p = new ChunkPool(size, Math.max(1, Math.floor(LARGE_BUDGET / size)))));
  return p;
};

/** Responses with a write waiting for the socket, and since when (performance.now()). */
const waiting = new Map<ServerResponse, { since: number; timeoutMs: number }>();
let sweeper: NodeJS.Timeout | undefined;

/** Ends responses whose pending write made no progress within their timeout. */
function watchWrite(res: ServerResponse, timeoutMs: number): void {
  waiting.set(res, { since: performance.now(), timeoutMs });
  sweeper ??= setInterval(
    () => {
      const now = performance.now();
      for (const [r, w] of waiting) {
        if (now - w.since > w.timeoutMs) {
          waiting.delete(r);
          r.destroy(new Error("send timeout: the client took no data"));
        }
      }
      if (waiting.size === 0) {
        clearInterval(sweeper);
        sweeper = undefined;
      }
    },
    Math.min(1_000, Math.max(50, timeoutMs / 4)),
  );
  sweeper.unref();
}

export interface StreamOptions {
  /** Size of large chunks. */
  chunkSize: number;
  /** End the response when one write waits longer than this for the socket. */
  sendTimeoutMs: number;
}

export function streamFileRange(
  fd: number,
  start: number,
  end: number,
  res: ServerResponse,
  opts: StreamOptions,
  onChunk: (bytes: number) => void,
): void {
  const pool = poolOf(opts.chunkSize);
  let small: Buffer | undefined;
  let slow = false;
  let pos = start;
  let reading = false;
  let writing = false;
  let closed = false;
  /** The large buffer this response holds now (for a read or a queued write), if any. */
  let held: Buffer | undefined;

  // Closing an fd while a read on it is still in the thread pool could let that read hit
  // a file opened later under the same number: close only between reads.
  const release = () => {
    if (closed || reading) return;
    closed = true;
    waiting.delete(res);
    close(fd, () => undefined);
  };
  /** `reusable`: nothing (read or socket) uses the buffer any more. */
  const giveBack = (reusable: boolean) => {
    if (held) pool.give(held, reusable);
    held = undefined;
  };
  res.once("close", () => {
    // A queued write keeps its buffer until its callback, which a cut connection may never
    // run: take it off the budget now, never to be reused. A running read gives it back itself.
    if (writing) giveBack(false);
    release();
  });

  const next = (): void => {
    if (res.destroyed) return release();
    const want = end + 1 - pos;
    if (want <= 0) {
      res.end();
      return release();
    }
    if (!slow && want > SMALL_CHUNK) held = pool.take();
    const buf = held ?? (small ??= Buffer.allocUnsafe(Math.min(SMALL_CHUNK, want)));
    reading = true;
    read(fd, buf, 0, Math.min(buf.length, want), pos, (err, got) => {
      reading = false;
      if (res.destroyed) {
        giveBack(true);
        return release();
      }
      if (err || got === 0) {
        // The file shrank or failed under us: the promised Content-Length cannot be met.
        giveBack(true);
        res.destroy(err ?? new Error("file ended early"));
        return release();
      }
      pos += got;
      onChunk(got);
      watchWrite(res, opts.sendTimeoutMs);
      const since = performance.now();
      writing = true;
      res.write(got === buf.length ? buf : buf.subarray(0, got), (werr) => {
        writing = false;
        waiting.delete(res);
        giveBack(true);
        if (performance.now() - since > SLOW_WRITE_MS) slow = true;
        if (werr) release();
        else next();
      });
    });
  };
  next();
}
