/**
 * Compression sniffing (server-reference §8.3 `guess_file_compression`) and buffer-level
 * gzip/xz for the small payloads that are edited in memory (a recovery ramdisk is a few MB).
 * Whole images and tarballs never come here: they stream through `src/io/xz.ts`.
 */
import { spawn } from "node:child_process";
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { ArchiveError, errorMessage } from "../errors.js";

export type Compression = "gzip" | "xz" | null;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

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

/** Keeps a runaway xz's stderr from growing without bound; the last line is the reason. */
const MAX_STDERR = 64 << 10;

/**
 * Runs the `xz` binary over an in-memory buffer without blocking the event loop (the server
 * keeps serving while a recovery ramdisk is repacked); its stderr becomes the error reason.
 * Output beyond `maxBytes` kills xz: a decompression bomb stops at the cap.
 */
function runXz(args: string[], input: Buffer, what: string, maxBytes = 1 << 30): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn("xz", args, { stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    let stderr = "";
    let settled = false;
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      reject(new ArchiveError(`Cannot ${what}: ${message}`));
    };
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else if (!tooBig) {
        tooBig = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < MAX_STDERR) stderr += d;
    });
    // xz exiting early (corrupt input, killed at the cap) closes its stdin: EPIPE is expected.
    child.stdin.on("error", () => {});
    child.on("error", (err) => fail(err.message));
    child.on("close", (code, signal) => {
      if (tooBig) return fail(`it expands to more than ${maxBytes} bytes (decompression bomb?)`);
      if (code !== 0) {
        const reason = stderr.trim().split("\n").pop() || `exit ${code ?? signal}`;
        return fail(reason.replace(/^xz: (\(stdin\): )?/, ""));
      }
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks, size));
    });
    child.stdin.end(input);
  });
}

/**
 * Largest payload decompressed in memory (a recovery ramdisk is a few MB): a decompression
 * bomb (a few KB that expand to gigabytes) fails with a clear error instead of exhausting memory.
 */
export const MAX_DECOMPRESSED = 256 << 20;

/** Decompresses `data` according to its magic; raw data comes back as is. */
export async function decompressBuffer(
  data: Buffer,
  what: string,
  maxBytes = MAX_DECOMPRESSED,
): Promise<{ data: Buffer; compression: Compression; xzCheck?: string }> {
  const compression = guessCompression(data);
  if (compression === "gzip") {
    try {
      // zlib reads concatenated gzip members like `gzip -dc` does; it runs on the thread pool.
      return { data: await gunzipAsync(data, { maxOutputLength: maxBytes }), compression };
    } catch (err) {
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new ArchiveError(`Cannot decompress ${what}: it expands to more than ${maxBytes} bytes (decompression bomb?)`);
      }
      throw new ArchiveError(`Cannot decompress ${what}: gzip: ${errorMessage(err)}`, "Exception", { cause: err });
    }
  }
  if (compression === "xz") {
    const out = await runXz(["-d", "-c", "-T1", "--memlimit-decompress=70%"], data, `decompress ${what}`, maxBytes);
    return { data: out, compression, xzCheck: xzCheckOf(data) };
  }
  return { data, compression };
}

/**
 * Compresses `data` like the reference repack (§8.5 step 7): gzip level 9, `xz -9`, or none.
 * Single-threaded xz gives one block, the form every xz reader (kernel included) accepts.
 */
export async function compressBuffer(
  data: Buffer,
  compression: Compression,
  what: string,
  opts: { xzCheck?: string } = {},
): Promise<Buffer> {
  if (compression === "gzip") return gzipAsync(data, { level: 9 });
  if (compression === "xz") {
    return runXz(["-z", "-c", "-9", "-T1", `--check=${opts.xzCheck ?? "crc64"}`], data, `compress ${what}`);
  }
  return data;
}
