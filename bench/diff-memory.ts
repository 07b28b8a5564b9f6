/**
 * Memory of `makeDelta` on real images: `node dist/bench/diff-memory.js OLD NEW [OUT]`.
 * Prints this process's peak RSS (xz children not included: `/usr/bin/time -v` reports the
 * largest of node and its xz processes) and the largest heap seen while sampling.
 */
import { resourceUsage } from "node:process";
import { makeDelta } from "../src/archive/diff/delta.js";

const [oldPath, newPath, out = "/tmp/diff-memory-bench.tar.xz"] = process.argv.slice(2);
if (!oldPath || !newPath) {
  process.stderr.write("usage: node dist/bench/diff-memory.js OLD NEW [OUT]\n");
  process.exit(2);
}
let heapPeak = 0;
const timer = setInterval(() => {
  heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
}, 100);
const start = Date.now();
const s = await makeDelta(oldPath, newPath, out, { xzLevel: Number(process.env.XZ_LEVEL ?? 9) });
clearInterval(timer);
const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
process.stdout.write(
  [
    `added ${s.added}, changed ${s.changed}, deleted ${s.deleted}, delta ${mb(s.uncompressedBytes)} -> ${mb(s.compressedBytes)}`,
    `wall ${((Date.now() - start) / 1000).toFixed(1)} s`,
    `node peak RSS ${mb(resourceUsage().maxRSS * 1024)}, peak heap used ${mb(heapPeak)}`,
  ].join("\n") + "\n",
);
