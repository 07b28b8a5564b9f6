/**
 * `npm run bench [-- --input DIR] [--scale N] [--delta-mb N] [--debootstrap [--size minbase|phone]] [--xz-level N] [--xz-block-mib N] [--clean] [--keep]`
 * (issue 8): the cost of `si import-images` on realistic rootfs tarballs against the limit
 * set by xz, in one table. `--help` prints the usage.
 *
 * Inputs: two `.tar.xz` rootfs versions — by default made from this machine's /usr
 * (bench/rootfs.ts, ~340 MB × scale uncompressed; --delta-mb N changes as many files as make
 * a delta of about N MB, else 5 % of them), with --debootstrap a Debian root and its next
 * version (bench/debootstrap.ts; `--size phone` is the ~900 MB phone-like pair of issue 19),
 * with --input a pair of DIR (bench/pair-input.ts).
 * Generated inputs are kept in bench-work/ for the next run (--clean removes them; --keep
 * also keeps the instance and the delta's tar).
 *
 * Steps, each measured as a whole process tree (bench/proctree.ts): import v1 (full), import
 * v2 (full + delta), import with nothing new, the delta alone (makeDelta in a child), and the
 * LIMIT: `xz -dc` of both inputs in parallel, then `xz -T0 -<level>` of exactly the delta's
 * uncompressed bytes (also with the import's own xz settings, for comparison).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_DELTA_XZ_BLOCK_MIB } from "../src/config/load.js";
import { compressArgs } from "../src/io/xz.js";
import { parseBenchArgs } from "./args.js";
import { DEBOOTSTRAP_SIZES, makeDebootstrapPair, type DebootstrapSize } from "./debootstrap.js";
import { SI, buildFarm, makeBenchInstance } from "./instance.js";
import { findPair } from "./pair-input.js";
import { measure, table, type Cost } from "./proctree.js";
import { makeRootfsPair } from "./rootfs.js";

const USAGE = `usage: npm run bench -- [options]

The cost of \`si import-images\` (v1 full, v2 full + delta, nothing new, the delta alone) on a
pair of rootfs tarballs, against the limit set by xz.

inputs (one of; default: a pair made from this machine's /usr):
  --input DIR          a pair in DIR: two *.tar.xz (v1, v2 in name order) or v1/*.tar.xz + v2/*.tar.xz
  --debootstrap        a Debian bookworm root and its next version (needs root, debootstrap, the
                       mirror of this machine's apt sources)
  --size minbase|phone with --debootstrap: minbase (default) or the ~900 MB phone-like pair
  --scale N            /usr pair: ~340 MB x N (default 1)
  --delta-mb N         /usr pair: change as many files as make a delta of about N MB

options:
  --xz-level N         xz_level of the instance (default 9)
  --xz-block-mib N     delta_xz_block_mib of the instance (default ${DEFAULT_DELTA_XZ_BLOCK_MIB})
  --work DIR           where generated inputs and the instance live (default bench-work/)
  --keep               keep the instance and the delta's tar
  --clean              remove the generated inputs afterwards
  --help               this text
`;
const args = parseBenchArgs(
  process.argv.slice(2),
  USAGE,
  ["--input", "--scale", "--delta-mb", "--xz-level", "--xz-block-mib", "--size", "--work"],
  ["--debootstrap", "--clean", "--keep"],
);
const flag = args.flag;
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

const work = resolve(args.opt("--work", "bench-work"));
mkdirSync(work, { recursive: true });
const scale = args.num("--scale", 1);
const level = args.num("--xz-level", 9);
const blockMiB = args.num("--xz-block-mib", DEFAULT_DELTA_XZ_BLOCK_MIB);
const input = args.opt("--input", "");
const deltaMB = args.opt("--delta-mb", "");
const size = args.opt("--size", "minbase") as DebootstrapSize;
if (!DEBOOTSTRAP_SIZES.includes(size)) {
  process.stderr.write(`--size must be one of ${DEBOOTSTRAP_SIZES.join(", ")}, got ${size}\n`);
  process.exit(2);
}
const importXzArgs = compressArgs({ level, blockSize: blockMiB << 20 });

function uncompressed(xzFile: string): number {
  const totals = execFileSync("xz", ["--robot", "-l", xzFile], { encoding: "utf8" })
    .split("\n")
    .find((l) => l.startsWith("totals"))!;
  return Number(totals.split("\t")[4]);
}

let v1: string;
let v2: string;
let what: string;
const generated: string[] = [];
if (input) {
  ({ v1, v2 } = findPair(resolve(input)));
  what = `${v1} -> ${v2}`;
} else if (flag("--debootstrap")) {
  const dir = join(work, `debootstrap-${size}`);
  ({ v1, v2, summary: what } = makeDebootstrapPair(dir, size, log));
  generated.push(dir);
} else {
  const dir = join(work, `usr-scale${scale}${deltaMB ? `-delta${deltaMB}` : ""}`);
  ({ v1, v2, summary: what } = makeRootfsPair(dir, scale, log, deltaMB ? Number(deltaMB) * 1e6 : undefined));
  generated.push(dir);
}
const mb = (n: number) => n / 1e6;
const v1MB = mb(uncompressed(v1));
const v2MB = mb(uncompressed(v2));
const load0 = loadavg()[0];

const routes = new Map<string, { file?: string; body?: string }>([
  ["/rootfs.tar.xz", { file: v1 }],
  ["/rootfs.version", { body: "1\n" }],
]);
const farm = await buildFarm(routes);
const inst = await makeBenchInstance(work, farm.url, level, { global: [`delta_xz_block_mib = ${blockMiB}`] });
const check = (step: string, c: Cost) => {
  if (c.exitCode !== 0) throw new Error(`${step} failed with exit code ${c.exitCode}`);
  return c;
};
const importRun = async (step: string) => check(step, await measure(process.execPath, [SI, "--config", inst.config, "import-images"]));

try {
  log(`import v1 (${v1MB.toFixed(0)} MB)`);
  const i1 = await importRun("import v1");
  routes.set("/rootfs.tar.xz", { file: v2 });
  routes.set("/rootfs.version", { body: "2\n" });
  log(`import v2 (${v2MB.toFixed(0)} MB, full + delta)`);
  const i2 = await importRun("import v2");
  log("import with nothing new");
  const i3 = await importRun("import, nothing new");

  const index = JSON.parse(readFileSync(join(inst.publish, "devel/mako/index.json"), "utf8")) as {
    images: { type: string; files: { path: string }[] }[];
  };
  const deltaUrl = index.images.find((i) => i.type === "delta")!.files.find((f) => f.path.includes(".delta-"))!.path;
  const deltaXz = join(inst.publish, deltaUrl);
  const deltaTar = join(work, "delta.tar");
  execFileSync("sh", ["-c", `xz -dc '${deltaXz}' > '${deltaTar}'`]);
  const dBytes = statSync(deltaTar).size;
  const dMB = mb(dBytes);
  const dXzMB = mb(statSync(deltaXz).size);

  log("delta generation alone");
  const alone = join(work, "delta-alone.tar.xz");
  const dg = check(
    "delta alone",
    await measure(process.execPath, [fileURLToPath(new URL("./delta-run.js", import.meta.url)), v1, v2, alone, String(level)], {
      stdout: "capture",
    }),
  );
  const dgInfo = JSON.parse(dg.stdout ?? "{}") as { onePass?: boolean; why?: string };
  rmSync(alone, { force: true });

  log("limit: decompress both inputs in parallel");
  const ld = check("xz -dc", await measure("sh", ["-c", `xz -dc '${v1}' >/dev/null & xz -dc '${v2}' >/dev/null & wait`]));
  log(`limit: xz -T0 -${level} of the delta's ${dMB.toFixed(1)} MB`);
  const xzOut = join(work, "delta.limit.xz");
  const xzTo = (args: string[]) => ["-c", `xz ${args.join(" ")} '${deltaTar}' > '${xzOut}'`];
  const lc = check("xz -T0", await measure("sh", xzTo(["-z", "-c", "-T0", `-${level}`])));
  const plainOut = mb(statSync(xzOut).size);
  const lo = check("xz (import settings)", await measure("sh", xzTo(importXzArgs)));
  rmSync(xzOut, { force: true });
  if (!flag("--keep")) rmSync(deltaTar, { force: true });

  const limit = ld.wallS + lc.wallS;
  const limitOwn = ld.wallS + lo.wallS;
  const both = v1MB + v2MB;
  const row = (step: string, c: { wallS: number; cpuS: number; peakRssMB: number }, mbs: number | string, ratio: number | string) => ({
    step,
    "wall s": c.wallS,
    "CPU s": c.cpuS,
    "CPU/wall": c.cpuS / c.wallS,
    "peak RSS MB": c.peakRssMB,
    "MB/s": typeof mbs === "number" ? mbs / c.wallS : mbs,
    ratio,
  });
  const sum = (a: Cost, b: Cost) => ({ wallS: a.wallS + b.wallS, cpuS: a.cpuS + b.cpuS, peakRssMB: Math.max(a.peakRssMB, b.peakRssMB) });
  console.log(`input: ${what}`);
  console.log(
    `v1 ${v1MB.toFixed(0)} MB (${mb(statSync(v1).size).toFixed(0)} MB xz), v2 ${v2MB.toFixed(0)} MB (${mb(statSync(v2).size).toFixed(0)} MB xz); delta ${dMB.toFixed(1)} MB -> ${dXzMB.toFixed(2)} MB (plain xz -${level}: ${plainOut.toFixed(2)} MB)`,
  );
  console.log(
    `xz level ${level}; import's delta compression: xz ${importXzArgs.join(" ")}; ${execFileSync("nproc").toString().trim()} cores; load average ${load0.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`,
  );
  console.log(`delta alone made in ${dgInfo.onePass ? "one pass" : `two passes (${dgInfo.why ?? "?"})`}`);
  console.log("MB/s: uncompressed MB read (both inputs) or compressed (delta) per wall second; ratio = wall / limit wall");
  console.log(
    table([
      row("import v1 (full)", i1, v1MB, "-"),
      row("import v2 (full + delta)", i2, both, i2.wallS / limit),
      row("import, nothing new", i3, "-", "-"),
      row("delta generation alone", dg, both, dg.wallS / limit),
      row("limit: xz -dc v1 & v2", ld, both, "-"),
      row(`limit: xz -T0 -${level} delta`, lc, dMB, "-"),
      row("LIMIT (sum)", sum(ld, lc), both, 1),
      row("xz, import's settings", lo, dMB, "-"),
      row(
        "limit w/ import's xz",
        sum(ld, lo),
        both,
        `${(i2.wallS / limitOwn).toFixed(2)} (v2), ${(dg.wallS / limitOwn).toFixed(2)} (delta)`,
      ),
    ]),
  );
} finally {
  await farm.close();
  if (!flag("--keep")) rmSync(inst.base, { recursive: true, force: true });
  if (flag("--clean")) for (const d of generated) rmSync(d, { recursive: true, force: true });
}
