/**
 * Compression sniffing (server-reference §8.3 `guess_file_compression`) and buffer-level
 * gzip/xz for the small payloads that are edited in memory (a recovery ramdisk is a few MB).
 * Whole images and tarballs never come here: they stream through `src/io/xz.ts`.
 */
import { spawnSync } from "node:child_process";
import { gunzipSync, gzipSync } from "node:zlib";
import { ArchiveError, errorMessage } from "../errors.js";

export type Compression = "gzip" | "xz" | null;

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** §8.3: `1f 8b 08` → gzip, `fd 37 7a 58 5a 00` → xz, anything else → none (raw). */
export function guessCompression(head: Buffer): Compression {
  if (head.length >= 3 && head.subarray(0, 3).equals(GZIP_MAGIC)) return "gzip";
  if (head.length >= 6 && head.subarray(0, 6).equals(XZ_MAGIC)) return "xz";
  return null;
}

/** xz integrity check names as `xz --check=` spells them, by stream-flags check ID. */
const XZ_CHECKS: Record<number, string> = { 0: "none", 1: "crc32", 4: "crc64", 10: "sha256" };

/**
 * The integrity check of an xz stream (byte 7 of the stream header). Kept on recompression:
 * a kernel unpacking its initramfs only knows CRC32 (Documentation/staging/xz.rst), so an
 * initrd made with `--check=crc32` must not come back as CRC64.
 */
export function xzCheckOf(data: Buffer): string {
  return XZ_CHECKS[data[7] ?? 4] ?? "crc64";
}

/** Runs the `xz` binary over an in-memory buffer; its stderr becomes the error reason. */
function runXz(args: string[], input: Buffer, what: string, maxBytes = 1 << 30): Buffer {
  const r = spawnSync("xz", args, { input, maxBuffer: maxBytes });
  if ((r.error as { code?: string } | undefined)?.code === "ENOBUFS") {
    throw new ArchiveError(`Cannot ${what}: it expands to more than ${maxBytes} bytes (decompression bomb?)`);
  }
  if (r.error) throw new ArchiveError(`Cannot ${what}: ${r.error.message}`);
  if (r.status !== 0) {
    const reason = r.stderr.toString("utf8").trim().split("\n").pop() || `exit ${r.status ?? r.signal}`;
    throw new ArchiveError(`Cannot ${what}: ${reason.replace(/^xz: (\(stdin\): )?/, "")}`);
  }
  return r.stdout;
}

/**
 * Largest payload decompressed in memory (a recovery ramdisk is a few MB): a decompression
 * bomb (a few KB that expand to gigabytes) fails with a clear error instead of exhausting memory.
 */
export const MAX_DECOMPRESSED = 256 << 20;

/** Decompresses `data` according to its magic; raw data comes back as is. */
export function decompressBuffer(data: Buffer, what: string, maxBytes = MAX_DECOMPRESSED): { data: Buffer; compression: Compression; xzCheck?: string } {
  const compression = guessCompression(data);
  if (compression === "gzip") {
    try {
      // zlib reads concatenated gzip members like `gzip -dc` does.
      return { data: gunzipSync(data, { maxOutputLength: maxBytes }), compression };
    } catch (err) {
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new ArchiveError(`Cannot decompress ${what}: it expands to more than ${maxBytes} bytes (decompression bomb?)`);
      }
      throw new ArchiveError(`Cannot decompress ${what}: gzip: ${errorMessage(err)}`, "Exception", { cause: err });
    }
  }
  if (compression === "xz") {
    const out = runXz(["-d", "-c", "-T1", "--memlimit-decompress=70%"], data, `decompress ${what}`, maxBytes);
    return { data: out, compression, xzCheck: xzCheckOf(data) };
  }
  return { data, compression };
}

/**
 * Compresses `data` like the reference repack (§8.5 step 7): gzip level 9, `xz -9`, or none.
 * Single-threaded xz gives one block, the form every xz reader (kernel included) accepts.
 */
export function compressBuffer(data: Buffer, compression: Compression, what: string, opts: { xzCheck?: string } = {}): Buffer {
  if (compression === "gzip") return gzipSync(data, { level: 9 });
  if (compression === "xz") {
    return runXz(["-z", "-c", "-9", "-T1", `--check=${opts.xzCheck ?? "crc64"}`], data, `compress ${what}`);
  }
  return data;
}
