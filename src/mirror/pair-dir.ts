/**
 * channels.json and its signature as one switchable unit on rsync mirrors (issue 16,
 * "Consistency under concurrency").
 *
 * Why: a device fetches /channels.json, then /channels.json.asc, and on a mismatch re-fetches
 * the keyring and tries once more (client-protocol §3 step 4). Installing the pair by two
 * renames leaves a gap between them; on a mirror whose disk is busy (fsyncs of other writers)
 * the second rename waits for the journal, measured here at tens of milliseconds, and a device
 * whose retry lands in the same gap fails. `si serve` holds such requests on the primary
 * (src/server/pair-settle.ts); a mirror's nginx cannot.
 *
 * So the push also puts the pair in a directory named after its content,
 * `.si/channels/<id>/` (id: sha256 of document and signature, so a re-signed pair gets a new
 * directory too), and then replaces one symlink, `.si/channels/current`, by a
 * single rename (rsync creates a symlink under a temporary name and renames it). The nginx
 * site (`si nginx-site`) serves /channels.json and its .asc through that symlink when it
 * exists: each request opens the file through whichever directory the symlink names at that
 * instant, so a mismatch lasts only until the next request, and the client's retry gets a
 * matching pair. The plain files are pushed too (after the switch) for mirrors served without
 * that location. Old pair directories go with the removal pass, after the grace.
 */
import { createHash } from "node:crypto";
import { link, mkdir, readFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { PAIR_DIR, PAIR_SWITCH, type LocalFile } from "./plan.js";

/**
 * Writes the pair directory and the switch into the snapshot `dir` (which already holds
 * channels.json and .asc) and returns their entries. The switch's size and mtime are those of
 * channels.json, so the plan sends it whenever channels.json changed.
 */
export async function writePairDir(dir: string, files: readonly LocalFile[]): Promise<LocalFile[]> {
  const hash = createHash("sha256");
  for (const name of ["channels.json", "channels.json.asc"]) hash.update(await readFile(join(dir, name)).catch(() => Buffer.alloc(0)));
  const id = hash.digest("hex").slice(0, 16);
  const out: LocalFile[] = [];
  await mkdir(join(dir, PAIR_DIR, id), { recursive: true });
  for (const f of files.filter((x) => x.path === "channels.json" || x.path === "channels.json.asc")) {
    const path = `${PAIR_DIR}/${id}/${f.path}`;
    await link(join(dir, f.path), join(dir, path));
    out.push({ ...f, path });
  }
  await symlink(id, join(dir, PAIR_SWITCH));
  const doc = files.find((f) => f.path === "channels.json");
  if (doc) out.push({ path: PAIR_SWITCH, size: doc.size, mtimeMs: doc.mtimeMs });
  return out;
}
