/**
 * `npm run bench:codec [-- --input FILE.tar] [--level N]`: the two xz codecs of src/io/xz.ts
 * on the same >= 200 MB tarball (default: a tar of this machine's /usr/bin), compress and
 * decompress, wall / CPU / peak RSS of the whole process tree.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measure, table } from "./proctree.js";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const work = resolve("bench-work");
mkdirSync(work, { recursive: true });
const level = opt("--level", "9");
let input = opt("--input", "");
if (!input) {
  input = join(work, "codec-input.tar");
  if (!existsSync(input)) execFileSync("tar", ["-cf", input, "-C", "/", "usr/bin"], { stdio: "inherit" });
}
const mb = statSync(input).size / 1e6;
console.log(`input ${input}: ${mb.toFixed(0)} MB, xz level ${level}, ${execFileSync("nproc").toString().trim()} cores`);
const runner = fileURLToPath(new URL("./codec-run.js", import.meta.url));
const rows = [];
for (const codec of ["xz", "lzma-native"]) {
  const xzOut = join(work, `codec.${codec}.tar.xz`);
  const back = join(work, `codec.${codec}.tar`);
  const c = await measure(process.execPath, [runner, codec, "compress", input, xzOut, level]);
  const d = await measure(process.execPath, [runner, codec, "decompress", xzOut, back, level]);
  execFileSync("cmp", [input, back]);
  const xzMB = statSync(xzOut).size / 1e6;
  rows.push(
    { codec, op: "compress", "wall s": c.wallS, "cpu s": c.cpuS, "peak RSS MB": c.peakRssMB, "MB/s": mb / c.wallS, "out MB": xzMB },
    { codec, op: "decompress", "wall s": d.wallS, "cpu s": d.cpuS, "peak RSS MB": d.peakRssMB, "MB/s": mb / d.wallS, "out MB": mb },
  );
  unlinkSync(back);
  unlinkSync(xzOut);
}
console.log(table(rows));
