/**
 * `npm run bench:xz-curve -- --delta FILE.tar.xz | --tar FILE.tar [--blocks 2,4,8,16,32] [--level 9]`
 * (issue 19): the measured curve that chooses `delta_xz_block_mib`. For each block size (the
 * dictionary is the smallest power of two ≥ the block, ≤ 64 MiB: a larger one cannot help a
 * block that small) and for one `xz -9` block (what the reference ships): compressed bytes
 * and their ratio to the one block, wall and CPU of `xz -T0` on this machine's cores, peak
 * RSS of xz, and what a device needs to decompress: the memory xz reports (`xz --robot -lvv`,
 * "memory needed"), and the peak RSS and wall of `xz -d -T1` measured. A markdown table.
 */
import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseBenchArgs } from "./args.js";
import { table } from "./proctree.js";

const USAGE = `usage: npm run bench:xz-curve -- (--delta FILE.tar.xz | --tar FILE.tar) [options]

Compresses the payload (a delta's tar, decompressed first when given as .tar.xz) with xz blocks
of each size and once as one xz -9 block, and prints a markdown table: bytes, ratio to one
block, wall/CPU of xz -T0 here, xz's peak RSS, and the memory a device needs to decompress.

  --delta FILE.tar.xz  a delta as published (decompressed to a temporary tar first)
  --tar FILE.tar       an uncompressed payload
  --blocks LIST        block sizes in MiB (default 2,4,8,16,32)
  --level N            xz preset (default 9)
  --work DIR           temporary files (default the system temp directory)
  --help               this text
`;
const args = parseBenchArgs(process.argv.slice(2), USAGE, ["--delta", "--tar", "--blocks", "--level", "--work"], []);
const log = (s: string) => process.stderr.write(`xz-curve: ${s}\n`);
const MiB = 1 << 20;
/** Dictionary of each xz preset, MiB (xz(1) "Presets"). */
const PRESET_DICT_MIB = [0.25, 1, 2, 4, 4, 8, 8, 16, 32, 64];

interface Timed {
  wallS: number;
  cpuS: number;
  maxRssMB: number;
}

/** Runs `xz args` with stdout to `outFile` under /usr/bin/time: %M is xz's own peak RSS. */
async function timedXz(xzArgs: string[], outFile: string): Promise<Timed> {
  const dir = mkdtempSync(join(tmpdir(), "si-xz-curve-"));
  const timeFile = join(dir, "time");
  const fd = openSync(outFile, "w");
  try {
    const start = process.hrtime.bigint();
    const code: number = await new Promise((ok, fail) => {
      const child = spawn("/usr/bin/time", ["-o", timeFile, "-f", "%U %S %M", "xz", ...xzArgs], { stdio: ["ignore", fd, "inherit"] });
      child.on("error", fail);
      child.on("close", (c) => ok(c ?? -1));
    });
    const wallS = Number(process.hrtime.bigint() - start) / 1e9;
    if (code !== 0) throw new Error(`xz ${xzArgs.join(" ")} failed (exit ${code})`);
    const [u, s, kb] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
    return { wallS, cpuS: u + s, maxRssMB: kb / 1024 };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** "memory needed" to decompress, from `xz --robot -lvv` (bytes). */
function memoryNeeded(xzFile: string): number {
  const line = execFileSync("xz", ["--robot", "-lvv", xzFile], { encoding: "utf8" })
    .split("\n")
    .find((l) => l.startsWith("summary"))!;
  return Number(line.split("\t")[1]);
}

const blockCount = (xzFile: string) =>
  Number(
    execFileSync("xz", ["--robot", "-l", xzFile], { encoding: "utf8" })
      .split("\n")
      .find((l) => l.startsWith("totals"))!
      .split("\t")[2],
  );

/** Smallest power of two ≥ block, ≤ 64 MiB (LZMA2 dictionaries above the block are wasted). */
function dictFor(block: number): number {
  let d = 4096;
  while (d < block) d *= 2;
  return Math.min(d, 64 * MiB);
}

const deltaXz = args.opt("--delta", "");
const tarArg = args.opt("--tar", "");
if (!deltaXz === !tarArg) {
  process.stderr.write(`give exactly one of --delta FILE.tar.xz and --tar FILE.tar\n\n${USAGE}`);
  process.exit(2);
}
const level = args.num("--level", 9);
const blocks = args
  .opt("--blocks", "2,4,8,16,32")
  .split(",")
  .map((b) => Number(b.trim()));
if (blocks.some((b) => !(b > 0))) {
  process.stderr.write(`--blocks: MiB sizes separated by commas, got ${args.opt("--blocks", "")}\n`);
  process.exit(2);
}
const scratch = mkdtempSync(join(resolve(args.opt("--work", tmpdir())), "si-xz-curve-"));
const load0 = loadavg()[0];
try {
  const payload = tarArg ? resolve(tarArg) : join(scratch, "payload.tar");
  if (deltaXz) {
    log(`decompressing ${deltaXz}`);
    execFileSync("sh", ["-c", 'xz -dc "$1" > "$2"', "sh", resolve(deltaXz), payload]);
  }
  const raw = statSync(payload).size;
  const out = join(scratch, "out.xz");
  const settings = [
    {
      name: `xz -${level}, one block (-T1)`,
      block: "one",
      dict: String(PRESET_DICT_MIB[level] ?? "?"),
      args: ["-z", "-c", "-T1", `-${level}`, payload],
    },
    ...blocks.map((b) => ({
      name: `${b} MiB blocks (-T0)`,
      block: String(b),
      dict: String(dictFor(b * MiB) / MiB),
      args: [
        "-z",
        "-c",
        "-T0",
        "--memlimit-compress=70%",
        `--block-size=${Math.round(b * MiB)}`,
        `--lzma2=preset=${level},dict=${dictFor(b * MiB)}`,
        payload,
      ],
    })),
  ];
  const rows: Record<string, string | number>[] = [];
  let one = 0;
  for (const s of settings) {
    log(`${s.name}: xz ${s.args.slice(0, -1).join(" ")}`);
    const c = await timedXz(s.args, out);
    const bytes = statSync(out).size;
    if (!one) one = bytes;
    const d = await timedXz(["-d", "-c", "-T1", out], "/dev/null");
    rows.push({
      setting: s.name,
      "block MiB": s.block,
      "dict MiB": s.dict,
      blocks: blockCount(out),
      bytes,
      "vs one block": `${((bytes / one - 1) * 100).toFixed(2)} %`,
      "wall s": c.wallS,
      "CPU s": c.cpuS,
      "xz peak RSS MB": c.maxRssMB,
      "device needs MiB (xz -lvv)": memoryNeeded(out) / MiB,
      "xz -d -T1 peak RSS MB": d.maxRssMB,
      "xz -d -T1 wall s": d.wallS,
    });
  }
  console.log(
    `payload: ${deltaXz || tarArg}, ${raw} bytes (${(raw / MiB).toFixed(1)} MiB) uncompressed; xz -${level}; ${availableParallelism()} cores; load average ${load0.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`,
  );
  console.log("");
  console.log(table(rows));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
