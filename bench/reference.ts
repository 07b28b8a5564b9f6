/**
 * `npm run bench:reference -- --reference DIR [--pairs N] [--input DIR] [--work DIR] [--max-wait-min 15]`
 * (issue 19): one honest benchmark against the reference server, both run on this machine on
 * the same pair, close together in time.
 *
 * For each pair (the order of the two servers alternates), each server gets a fresh instance,
 * imports v1, then — once the 1-minute load is ≤ --max-load (waiting up to --max-wait-min) —
 * the timed v2 import (full + delta): wall, CPU seconds of the whole process tree, whole-tree
 * peak RSS (bench/proctree.ts), delta bytes; then both deltas are applied as the recovery
 * does and compared with v2 (bench/recovery-check.ts). Printed per pair and as medians.
 * The servers import over HTTP from a "build farm" on 127.0.0.1 with a monitor file.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseBenchArgs } from "./args.js";
import { makeDebootstrapPair } from "./debootstrap.js";
import { SI, buildFarm, makeBenchInstance } from "./instance.js";
import { findPair } from "./pair-input.js";
import { measure, table, type Cost } from "./proctree.js";
import { load1, waitQuiet, type QuietResult } from "./quiet.js";
import { checkDelta, snapshotTree, unpack, type CheckResult, type Snapshot } from "./recovery-check.js";
import { makeRefInstance, missingDebianDeps, prepareReference } from "./reference-instance.js";

const USAGE = `usage: npm run bench:reference -- --reference DIR [options]

Imports the same v1 -> v2 pair with the reference server (Python) and ours, interleaved, and
prints per pair and overall (median): wall ratio (ref/ours), CPU seconds, whole-tree peak RSS,
delta bytes ratio (ours/ref), and the recovery-apply check of both deltas against v2.

  --reference DIR     a checkout of xfonelabs/system-image-server (or its bare git directory)
  --pairs N           number of pairs (default 1)
  --input DIR         the pair: two *.tar.xz (v1, v2 in name order) or v1/*.tar.xz + v2/*.tar.xz
                      (default: the phone-like Debian pair of \`npm run bench -- --debootstrap
                      --size phone\`, built in bench-work/debootstrap-phone when missing)
  --work DIR          working directory (default bench-work/reference)
  --max-load L        a timed import starts when the 1-minute load is <= L (default 1.0)
  --max-wait-min M    ...waiting at most M minutes, then it starts anyway and says so (default 15)
  --xz-level N        our instance's xz_level (default 9, as the reference's xz -9)
  --xz-block-mib N    our instance's delta_xz_block_mib (default: the server's default)
  --xz-dict-mib N     our instance's delta_xz_dict_mib (default: the server's default)
  --keep              keep the last instances
  --help              this text

Needs root (the recovery-apply check unpacks with owners) and Debian packages for the
reference: python3 python3-gpg gpg gpg-agent xz-utils time tar (exit 2 when missing).
`;
const args = parseBenchArgs(
  process.argv.slice(2),
  USAGE,
  ["--reference", "--pairs", "--input", "--work", "--max-load", "--max-wait-min", "--xz-level", "--xz-block-mib", "--xz-dict-mib"],
  ["--keep"],
);
const log = (s: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] bench:reference: ${s}\n`);
const refSrc = args.opt("--reference", "");
if (!refSrc) {
  process.stderr.write(`--reference DIR is required\n\n${USAGE}`);
  process.exit(2);
}
const missing = missingDebianDeps();
if (missing.length) {
  process.stderr.write(
    `bench:reference: the reference server needs Debian packages that are missing: ${missing.join(" ")}\n  apt-get install -y --no-install-recommends ${missing.join(" ")}\n`,
  );
  process.exit(2);
}
const pairs = args.num("--pairs", 1);
const maxLoad = args.num("--max-load", 1.0);
const maxWaitMin = args.num("--max-wait-min", 15);
const level = args.num("--xz-level", 9);
const blockMib = args.opt("--xz-block-mib", "");
const dictMib = args.opt("--xz-dict-mib", "");
const work = resolve(args.opt("--work", join("bench-work", "reference")));
mkdirSync(join(work, "logs"), { recursive: true });

const input = args.opt("--input", "");
const { v1, v2 } = input ? findPair(resolve(input)) : makeDebootstrapPair(resolve("bench-work", "debootstrap-phone"), "phone", log);
const server = prepareReference(resolve(refSrc), join(work, "ref-server"), log);

type Side = "ref" | "ours";
interface Run {
  cost: Cost;
  quiet: QuietResult;
  deltaBytes: number;
  deltaRawBytes: number;
  check: CheckResult;
  steps?: Record<string, number>;
  phases?: string;
}

const routes = new Map<string, { file?: string; body?: string }>();
const serve = (file: string, version: string) => {
  routes.set("/rootfs.tar.xz", { file });
  routes.set("/rootfs.version", { body: `${version}\n` });
};
const farm = await buildFarm(routes);

/** The rootfs delta of the newest delta image in `index` (the largest `.delta-` file). */
function deltaOf(publish: string, index: string, logFile: string): string {
  const idx = JSON.parse(readFileSync(join(publish, index), "utf8")) as {
    images: { type: string; files: { path: string; size: number }[] }[];
  };
  const files = idx.images
    .filter((i) => i.type === "delta")
    .flatMap((i) => i.files)
    .filter((f) => f.path.includes(".delta-"));
  if (!files.length) throw new Error(`Cannot find a delta in ${join(publish, index)}: the v2 import made none (its output: ${logFile})`);
  return join(publish, files.sort((a, b) => b.size - a.size)[0].path);
}

const rawBytes = (xz: string) =>
  Number(
    execFileSync("xz", ["--robot", "-l", xz], { encoding: "utf8" })
      .split("\n")
      .find((l) => l.startsWith("totals"))!
      .split("\t")[4],
  );

let expected: Snapshot | undefined;
async function v2Snapshot(): Promise<Snapshot> {
  if (!expected) {
    log("unpacking v2 for the recovery-apply check");
    const dir = unpack(v2, work);
    try {
      expected = await snapshotTree(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return expected;
}

const fail = (what: string, c: Cost, logFile: string): never => {
  throw new Error(`${what} failed (exit ${c.exitCode}); its output is in ${logFile}`);
};

async function runSide(side: Side, pair: number): Promise<Run> {
  const tag = `pair ${pair + 1} ${side}`;
  const logFile = (step: string) => join(work, "logs", `pair${pair + 1}-${side}-${step}.log`);
  let importOnce: (step: string) => Promise<Cost>;
  let publish: string;
  let index: string;
  let stop = () => {};
  let cleanup: () => void;
  let instanceConfig = "";
  if (side === "ref") {
    const inst = makeRefInstance(server, join(work, "ref-instance"), farm.url);
    ({ publish } = inst);
    index = "test/mako/index.json";
    stop = inst.stopAgents;
    importOnce = (step) => inst.importImages(logFile(step));
    cleanup = () => rmSync(inst.base, { recursive: true, force: true });
  } else {
    rmSync(join(work, "ours"), { recursive: true, force: true });
    const inst = await makeBenchInstance(join(work, "ours"), farm.url, level, {
      keys: join(work, "our-keys"),
      global: [...(blockMib ? [`delta_xz_block_mib = ${blockMib}`] : []), ...(dictMib ? [`delta_xz_dict_mib = ${dictMib}`] : [])],
    });
    ({ publish } = inst);
    instanceConfig = inst.config;
    index = "devel/mako/index.json";
    importOnce = async (step) => {
      const c = await measure(process.execPath, [SI, "--config", inst.config, "import-images"], { stdout: "capture", stderr: "stdout" });
      writeFileSync(logFile(step), c.stdout ?? "");
      return c;
    };
    cleanup = () => rmSync(inst.base, { recursive: true, force: true });
  }
  try {
    serve(v1, "1");
    stop();
    log(`${tag}: import v1`);
    const c1 = await importOnce("v1");
    if (c1.exitCode !== 0) fail(`${tag} import v1`, c1, logFile("v1"));
    serve(v2, "2");
    stop();
    const quiet = await waitQuiet(maxLoad, maxWaitMin, (s) => log(`${tag}: ${s}`));
    log(`${tag}: timed import v2 (full + delta), load ${quiet.load.toFixed(2)}`);
    const cost = await importOnce("v2");
    stop();
    if (cost.exitCode !== 0) fail(`${tag} import v2`, cost, logFile("v2"));
    const delta = deltaOf(publish, index, logFile("v2"));
    let steps: Record<string, number> | undefined;
    if (side === "ours") {
      try {
        const runs = JSON.parse(
          execFileSync(process.execPath, [SI, "--config", instanceConfig, "history", "--json", "--limit", "1"], { encoding: "utf8" }),
        ) as { devices: { steps: Record<string, number> }[] }[];
        steps = runs[0]?.devices[0]?.steps;
      } catch {
        /* best effort: an older `si history` without --json */
      }
    }
    log(`${tag}: recovery-apply check of ${delta.slice(publish.length)}`);
    const check = await checkDelta(v1, delta, await v2Snapshot(), work);
    const phases = side === "ref" ? refPhases(logFile("v2")) : undefined;
    return {
      cost,
      quiet,
      deltaBytes: statSync(delta).size,
      deltaRawBytes: rawBytes(delta),
      check,
      ...(steps ? { steps } : {}),
      ...(phases ? { phases } : {}),
    };
  } finally {
    if (!args.flag("--keep") || pair < pairs - 1) cleanup();
  }
}

/**
 * The reference's rootfs delta phases from its -vvv log (wall seconds, best effort): making
 * the delta tar (reading both images) up to "Xzipping", then xz -9 up to its signature.
 */
function refPhases(logFile: string): string | undefined {
  const lines = readFileSync(logFile, "utf8").split("\n");
  const at = (re: RegExp) => {
    const l = lines.find((x) => re.test(x));
    const m = l && /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d{3})/.exec(l);
    return m ? Date.parse(`${m[1]}T${m[2]}.${m[3]}Z`) / 1000 : undefined;
  };
  const start = at(/Generating delta from .* for 'http'/);
  const xz = at(/Xzipping file: .*\.delta-/);
  const signed = at(/Signing file: .*\.delta-.*\.tar\.xz\.asc/);
  if (start === undefined || xz === undefined || signed === undefined) return undefined;
  return `delta tar ${(xz - start).toFixed(1)} s, xz -9 ${(signed - xz).toFixed(1)} s`;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const MB = (n: number) => (n / 1e6).toFixed(3);

const results: { ref: Run; ours: Run }[] = [];
const load0 = load1();
try {
  for (let p = 0; p < pairs; p++) {
    const order: Side[] = p % 2 === 0 ? ["ref", "ours"] : ["ours", "ref"];
    const r: Partial<Record<Side, Run>> = {};
    for (const side of order) r[side] = await runSide(side, p);
    results.push(r as { ref: Run; ours: Run });
  }
} finally {
  await farm.close();
}

const row = (label: string, ref: Run, ours: Run) => ({
  pair: label,
  "ref wall s": ref.cost.wallS,
  "ours wall s": ours.cost.wallS,
  "wall ratio ref/ours": ref.cost.wallS / ours.cost.wallS,
  "ref CPU s": ref.cost.cpuS,
  "ours CPU s": ours.cost.cpuS,
  "ref peak MB": ref.cost.peakRssMB,
  "ours peak MB": ours.cost.peakRssMB,
  "ref delta MB": MB(ref.deltaBytes),
  "ours delta MB": MB(ours.deltaBytes),
  "delta ratio ours/ref": ours.deltaBytes / ref.deltaBytes,
  "mismatches ref/ours": `${ref.check.mismatches} / ${ours.check.mismatches}`,
  "stale mtimes ref/ours": `${ref.check.staleMtimes} / ${ours.check.staleMtimes}`,
  "load at start ref/ours": `${ref.quiet.load.toFixed(2)}${ref.quiet.gaveUp ? "!" : ""} / ${ours.quiet.load.toFixed(2)}${ours.quiet.gaveUp ? "!" : ""}`,
});
const med = (f: (r: { ref: Run; ours: Run }) => number) => median(results.map(f));
const rows: Record<string, string | number>[] = results.map((r, i) =>
  row(`${i + 1} (${i % 2 === 0 ? "ref" : "ours"} first)`, r.ref, r.ours),
);
rows.push({
  pair: "median",
  "ref wall s": med((r) => r.ref.cost.wallS),
  "ours wall s": med((r) => r.ours.cost.wallS),
  "wall ratio ref/ours": med((r) => r.ref.cost.wallS / r.ours.cost.wallS),
  "ref CPU s": med((r) => r.ref.cost.cpuS),
  "ours CPU s": med((r) => r.ours.cost.cpuS),
  "ref peak MB": med((r) => r.ref.cost.peakRssMB),
  "ours peak MB": med((r) => r.ours.cost.peakRssMB),
  "ref delta MB": MB(med((r) => r.ref.deltaBytes)),
  "ours delta MB": MB(med((r) => r.ours.deltaBytes)),
  "delta ratio ours/ref": med((r) => r.ours.deltaBytes / r.ref.deltaBytes),
  "mismatches ref/ours": `${med((r) => r.ref.check.mismatches)} / ${med((r) => r.ours.check.mismatches)}`,
  "stale mtimes ref/ours": `${med((r) => r.ref.check.staleMtimes)} / ${med((r) => r.ours.check.staleMtimes)}`,
  "load at start ref/ours": "",
});

const uncompressedMB = (f: string) => MB(rawBytes(f));
console.log(`pair: ${v1} (${uncompressedMB(v1)} MB tar) -> ${v2} (${uncompressedMB(v2)} MB tar)`);
console.log(
  `reference: ${resolve(refSrc)}; ${execFileSync("nproc").toString().trim()} cores; 1-min load ${load0.toFixed(2)} at start, ${load1().toFixed(2)} at end; timed imports wait for load <= ${maxLoad} (up to ${maxWaitMin} min; "!" = gave up waiting)`,
);
console.log(
  "v2 import = full + delta; CPU s = user+sys of the whole process tree (gpg-agents the reference's gpgme daemonizes are not in it); peak MB = whole-tree RSS",
);
console.log(table(rows));
for (const [i, r] of results.entries()) {
  for (const side of ["ref", "ours"] as const) {
    const x = r[side];
    console.log(
      `pair ${i + 1} ${side}: delta ${x.deltaBytes} bytes (${MB(x.deltaRawBytes)} MB raw); ${x.check.mismatches} mismatches, ${x.check.staleMtimes} stale mtimes${x.check.examples.length ? `; e.g.\n    ${x.check.examples.join("\n    ")}` : ""}`,
    );
  }
  if (r.ref.phases) console.log(`pair ${i + 1} ref, delta phases (wall, from its log): ${r.ref.phases}`);
  const steps = r.ours.steps;
  if (steps && Object.keys(steps).length)
    console.log(
      `pair ${i + 1} ours, import steps (wall ms, from si history): ${Object.entries(steps)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
    );
}
console.log(`logs: ${join(work, "logs")}`);
