/**
 * Child of `npm run bench`: makes one delta with the importer's code path (makeDelta: one
 * pass over each image, see archive/diff/one-pass.ts) so it can be measured as a process tree.
 * `node dist/bench/delta-run.js OLD NEW OUT LEVEL` prints the DeltaSummary sizes as JSON.
 */
import { makeDelta } from "../src/archive/diff/delta.js";

const [oldPath, newPath, out, level = "9"] = process.argv.slice(2);
if (!oldPath || !newPath || !out) {
  process.stderr.write("usage: node dist/bench/delta-run.js OLD NEW OUT [LEVEL]\n");
  process.exit(2);
}
const s = await makeDelta(oldPath, newPath, out, { xzLevel: Number(level) });
process.stdout.write(
  JSON.stringify({
    members: s.members,
    uncompressedBytes: s.uncompressedBytes,
    compressedBytes: s.compressedBytes,
    onePass: s.onePass,
    why: s.why,
  }) + "\n",
);
