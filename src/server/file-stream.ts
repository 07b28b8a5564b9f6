/**
 * Streams a byte range of an open file to a response through one reused buffer.
 *
 * fs.ReadStream allocates a fresh buffer for every chunk; for multi-gigabyte images that is
 * thousands of large external allocations, and the garbage collections they trigger doubled
 * our CPU per byte in `si serve` (whose heap also holds commander, openpgp, ...). One buffer
 * per response, refilled only after the socket took the previous chunk (the write
 * callback), keeps memory flat at one chunk per download and the cost close to the copy.
 */
import { close, read } from "node:fs";
import type { ServerResponse } from "node:http";

export function streamFileRange(
  fd: number,
  start: number,
  end: number,
  res: ServerResponse,
  chunkSize: number,
  onChunk: (bytes: number) => void,
): void {
  const buf = Buffer.allocUnsafe(Math.min(chunkSize, end - start + 1));
  let pos = start;
  let reading = false;
  let closed = false;

  // Closing an fd while a read on it is still in the thread pool could let that read hit
  // a file opened later under the same number: close only between reads.
  const release = () => {
    if (closed || reading) return;
    closed = true;
    close(fd, () => undefined);
  };
  res.once("close", release);

  const next = (): void => {
    if (res.destroyed) return release();
    const want = Math.min(buf.length, end + 1 - pos);
    if (want <= 0) {
      res.end();
      return release();
    }
    reading = true;
    read(fd, buf, 0, want, pos, (err, got) => {
      reading = false;
      if (res.destroyed) return release();
      if (err || got === 0) {
        // The file shrank or failed under us: the promised Content-Length cannot be met.
        res.destroy(err ?? new Error("file ended early"));
        return release();
      }
      pos += got;
      onChunk(got);
      res.write(got === buf.length ? buf : buf.subarray(0, got), (werr) => (werr ? release() : next()));
    });
  };
  next();
}
