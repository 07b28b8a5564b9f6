/**
 * xz compression behind one interface (`XzCodec`) with two implementations: spawning the
 * `xz` binary (threaded, what the reference runs) and lzma-native (in-process liblzma).
 * `npm run bench:codec` measures both; `defaultCodec()` is the faster one (see README).
 *
 * Output is a plain .xz stream with CRC64 checks: the recovery's busybox xzcat and the
 * client's Python lzma read it (client-protocol §8.3).
 */
import { spawn } from "node:child_process";
import { Duplex, PassThrough } from "node:stream";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { ArchiveError } from "../errors.js";

export interface XzOptions {
  /** Preset 0-9 (reference: 9). */
  level?: number;
  /** Worker threads; 0 = one per core. */
  threads?: number;
  /** Expected uncompressed size, when known before writing (a delta's plan). */
  sizeHint?: number;
  /**
   * Fixed block size when the size is not known in advance (a delta made in one pass):
   * the dictionary is the smallest power of two holding a block, as with `sizeHint`.
   */
  blockSize?: number;
  /** Dictionary with `blockSize` (default: the smallest power of two holding a block). */
  dictSize?: number;
}

export interface XzCodec {
  readonly name: string;
  compress(opts?: XzOptions): Duplex;
  /**
   * `threads`: 0 = one per core (xz splits only multi-block input), 1 = the least memory.
   * `threadedMemoryMiB`: above this xz decodes with one thread (`--memlimit-mt-decompress`),
   * so a hostile input's huge blocks cannot buy it memory.
   */
  decompress(opts?: { threads?: number; threadedMemoryMiB?: number }): Duplex;
}

/** Wraps a child process as a Duplex whose errors carry the tool's own stderr. */
function processDuplex(cmd: string, args: string[], what: string): Duplex {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  const out = new PassThrough();
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  child.stdout.pipe(out, { end: false });
  let exited = false;
  child.on("error", (err) => duplex.destroy(new ArchiveError(`Cannot ${what}: ${err.message}`)));
  child.on("close", (code, signal) => {
    exited = true;
    if (code === 0) out.end();
    else {
      const reason = stderr.trim().split("\n").pop() || `exit ${code ?? signal}`;
      duplex.destroy(new ArchiveError(`Cannot ${what}: ${reason.replace(/^xz: (\(stdin\): )?/, "")}`));
    }
  });
  // A consumer that gives up must not leave an xz process behind.
  duplex.on("close", () => {
    if (!exited) child.kill("SIGKILL");
  });
  child.stdin.on("error", () => {
    /* EPIPE when xz exits early: reported through "close" above */
  });
  return duplex;
}

const MiB = 1 << 20;
/** Dictionary size of each xz preset 0-9 (xz(1), "Presets"). */
const PRESET_DICT = [0.25, 1, 2, 4, 4, 8, 8, 16, 32, 64].map((m) => m * MiB);
/**
 * Largest block when the size is known. Each compressing thread touches about 8 bytes of
 * match-finder tree per input byte of its block plus in/out buffers: 3 MiB blocks keep two
 * xz threads near 85 MB whatever the delta's size, and the import's whole process tree under
 * 300 MB. Measured on a 19 MB delta (README, "Import performance"): 8 blocks of 2.3 MiB
 * are 2.8 % larger than one `xz -9` block (3 MiB: 2.0 %, 5 MiB: 1.3 %), for a third less CPU
 * (the small dictionary's match finder is faster) spread over every core, and devices
 * decompress with a 4 MiB dictionary instead of 64.
 */
export const MAX_BLOCK = 3 * MiB;
const GRAIN = 64 << 10;

/**
 * Block and dictionary sizes for `size` uncompressed bytes on `threads` cores: blocks as even
 * as possible, a multiple of `threads` in number, so every core compresses until the end
 * (one block would leave all but one idle: xz threads work on separate blocks); the
 * dictionary the smallest power of two holding a block (a larger one is never used, since
 * blocks are independent), at most the preset's.
 */
export function blockPlan(size: number, threads: number, level: number): { blockSize: number; dictSize: number } {
  const count = Math.ceil(Math.ceil(Math.max(size, 1) / MAX_BLOCK) / threads) * threads;
  const blockSize = Math.max(GRAIN, Math.ceil(size / count / GRAIN) * GRAIN);
  return { blockSize, dictSize: dictFor(blockSize, level) };
}

/** The smallest power of two (≥ 256 KiB) holding a block, at most the preset's dictionary. */
function dictFor(blockSize: number, level: number): number {
  let dictSize = 256 << 10;
  while (dictSize < blockSize) dictSize *= 2;
  return Math.min(dictSize, PRESET_DICT[level] ?? 64 * MiB);
}

/**
 * The `xz` command line of a compression (also what `npm run bench` reports and replays).
 * With a size hint the preset keeps its match finder and modes and only gets the block
 * and dictionary sizes of blockPlan(); the check stays CRC64 (client-protocol §8.3).
 */
export function compressArgs({ level = 9, threads = 0, sizeHint, blockSize: fixed, dictSize: dict }: XzOptions = {}): string[] {
  const args = ["-z", "-c", `-T${threads}`, "--memlimit-compress=70%"];
  if (fixed !== undefined) {
    const d = dict === undefined ? dictFor(fixed, level) : Math.min(dict, PRESET_DICT[level] ?? 64 * MiB);
    return [...args, `--block-size=${fixed}`, `--lzma2=preset=${level},dict=${d}`];
  }
  if (sizeHint === undefined) return [...args, `-${level}`];
  const { blockSize, dictSize } = blockPlan(sizeHint, threads || availableParallelism(), level);
  return [...args, `--block-size=${blockSize}`, `--lzma2=preset=${level},dict=${dictSize}`];
}

export const spawnXzCodec: XzCodec = {
  name: "xz",
  compress(opts = {}) {
    return processDuplex("xz", compressArgs(opts), "compress xz");
  },
  decompress({ threads = 0, threadedMemoryMiB }: { threads?: number; threadedMemoryMiB?: number } = {}) {
    const mt = threadedMemoryMiB === undefined ? [] : [`--memlimit-mt-decompress=${threadedMemoryMiB}MiB`];
    return processDuplex("xz", ["-d", "-c", `-T${threads}`, ...mt, "--memlimit-decompress=70%"], "decompress xz");
  },
};

interface LzmaNative {
  createCompressor(opts: { preset: number; threads: number; check?: number }): Duplex;
  createDecompressor(opts?: object): Duplex;
  CHECK_CRC64: number;
}
let lzma: LzmaNative | undefined;
function loadLzma(): LzmaNative {
  lzma ??= createRequire(import.meta.url)("lzma-native") as LzmaNative;
  return lzma;
}

export const lzmaNativeCodec: XzCodec = {
  name: "lzma-native",
  compress({ level = 9, threads = 0 } = {}) {
    const l = loadLzma();
    return l.createCompressor({ preset: level, threads, check: l.CHECK_CRC64 });
  },
  decompress() {
    return loadLzma().createDecompressor();
  },
};

const codecs: Record<string, XzCodec> = { xz: spawnXzCodec, "lzma-native": lzmaNativeCodec };

/** The codec chosen by measurement (README, "xz codec"); `SI_XZ_CODEC` overrides it. */
export function defaultCodec(): XzCodec {
  const forced = process.env.SI_XZ_CODEC;
  if (forced) {
    const c = codecs[forced];
    if (!c) throw new ArchiveError(`Cannot select xz codec: unknown SI_XZ_CODEC '${forced}' (xz, lzma-native)`);
    return c;
  }
  return spawnXzCodec;
}
