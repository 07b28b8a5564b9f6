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
import { ArchiveError } from "../errors.js";

export interface XzOptions {
  /** Preset 0-9 (reference: 9). */
  level?: number;
  /** Worker threads; 0 = one per core. */
  threads?: number;
  /** Expected uncompressed size, when known before writing (a delta's plan). */
  sizeHint?: number;
}

export interface XzCodec {
  readonly name: string;
  compress(opts?: XzOptions): Duplex;
  decompress(): Duplex;
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

/** The `xz` command line of a compression (also what `npm run bench` reports and replays). */
export function compressArgs({ level = 9, threads = 0 }: XzOptions = {}): string[] {
  return ["-z", "-c", `-${level}`, `-T${threads}`, "--memlimit-compress=70%"];
}

export const spawnXzCodec: XzCodec = {
  name: "xz",
  compress(opts = {}) {
    return processDuplex("xz", compressArgs(opts), "compress xz");
  },
  decompress() {
    return processDuplex("xz", ["-d", "-c", "-T0", "--memlimit-decompress=70%"], "decompress xz");
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
