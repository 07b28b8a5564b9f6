/**
 * Child of `npm run bench`: makes one delta with the importer's code path (makeDelta: pass 1
 * over both images, plan, pass 2 into xz) so it can be measured as a process tree.
 * `node dist/bench/delta-run.js OLD NEW OUT LEVEL` prints the DeltaSummary sizes as JSON.
 */
import { makeDelta } from "../src/archive/diff/delta.js";

const [oldPath, newPath, out, level = "9"] = process.argv.slice(2);
if (!oldPath || !newPath || !out) {
  process.stderr.write("usage: node dist/bench/delta-run.js OLD NEW OUT [LEVEL]\n");
  process.exit(2);
}
const s = await makeDelta(oldPath, newPath, out, { xzLevel: Number(level) });
process.stdout.write(JSON.stringify({ members: s.members, uncompressedBytes: s.uncompressedBytes, compressedBytes: s.compressedBytes }) + "\n");
