/**
 * Inspection riding another pass over an image's compressed bytes (the publish pass that
 * hashes and signs them, src/generators/pool.ts): each chunk is also written to an xz
 * decompressor whose output the TarInspector reads. No second read of the file.
 *
 * Backpressure: write() resolves only once the decompressor accepts more, so a decompressor
 * slower than the source slows the source instead of buffering the image in memory.
 */
import { once } from "node:events";
import type { Duplex } from "node:stream";
import type { Catalogue } from "../diff/catalogue.js";
import { defaultCodec, type XzCodec } from "../../io/xz.js";
import { TarInspector, type InspectOptions } from "./inspector.js";

export class ImageInspection {
  private readonly xz: Duplex;
  private readonly inspector: TarInspector;
  private readonly result: Promise<Catalogue>;
  private failure: unknown;
  private failed = false;

  constructor(opts: InspectOptions & { codec?: XzCodec }) {
    // Both cores for multi-block images (most rootfs tarballs are made with xz -T): the
    // decoder is what the first import of an image waits for (Debian pair, v1 import:
    // 13.0 s with one thread, 7.7 s with two). Its block buffers are capped at 96 MiB, past
    // which xz decodes with one thread (~10 MB): a hostile input cannot buy memory.
    this.xz = (opts.codec ?? defaultCodec()).decompress({ threads: 0, threadedMemoryMiB: 96 });
    this.xz.on("error", () => {
      /* reaches the inspector through the readable side */
    });
    this.inspector = new TarInspector(opts);
    this.result = this.inspector.run(this.xz);
    this.result.catch((err: unknown) => {
      this.failed = true;
      this.failure = err;
      this.xz.destroy();
    });
  }

  /** Feeds compressed bytes; rejects with the refusal as soon as the image is refused. */
  async write(chunk: Buffer): Promise<void> {
    if (this.failed) throw this.failure;
    this.inspector.compressed += chunk.length;
    if (!this.xz.write(chunk)) {
      const settled = this.result.then(
        () => {},
        () => {},
      );
      await Promise.race([once(this.xz, "drain").catch(() => settled), settled]);
    }
    if (this.failed) throw this.failure;
  }

  /** All bytes written: the image's catalogue once the inspector has read to the end. */
  async end(): Promise<Catalogue> {
    if (!this.failed) this.xz.end();
    return this.result;
  }

  /** The refusal, once the image was refused (the root cause when a pipeline fails). */
  get refusal(): unknown {
    return this.failed ? this.failure : undefined;
  }

  /** The publish failed elsewhere: stop the decompressor (its error is not reported). */
  abort(): void {
    this.xz.destroy();
  }
}
