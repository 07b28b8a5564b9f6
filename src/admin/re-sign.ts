/**
 * re-sign-indexes (server-reference §9.8): after the image-signing key was rotated (and the
 * new image-signing keyring published), sign everything devices verify with it again:
 * channels.json, every device's index.json, and the files of each device's latest image
 * and of every delta (what devices still download), with their sidecars. Document contents
 * and `generated_at` do not change. Each signature is replaced by an atomic rename.
 *
 * `all` also re-signs the files of older full images (flashing tools may still fetch them);
 * the reference never did.
 */
import { join } from "node:path";
import { lockOptions, resolve, type AdminContext } from "./context.js";
import { withLock } from "./lock.js";
import { deviceDirOf, exists } from "../tree/paths.js";
import { sidecarPath } from "../model/naming.js";
import { parseIndex } from "../model/index-doc.js";
import { readTextOrNull } from "../tree/commit.js";
import { Runner } from "../tree/context.js";
import { listIndexCopies } from "../tree/versioned-index.js";
import { parseChannels } from "../model/channels.js";

export interface ReSignResult {
  /** Documents re-signed (channels.json and index.json files), relative to the tree. */
  documents: string[];
  /** Image files and sidecars re-signed. */
  files: number;
  /** Files an index names that are not on disk (left alone). */
  missing: string[];
}

export async function reSignIndexes(actx: AdminContext, opts: { all?: boolean } = {}): Promise<ReSignResult> {
  const r = resolve(actx);
  const { config, signer, log } = r;
  const pub = config.publish_path;
  const result: ReSignResult = { documents: [], files: 0, missing: [] };
  const sign = async (path: string, dest: string) => {
    await signer.signFile("image-signing", path, dest);
    log.debug(`signed ${dest}`);
  };
  const signDevice = async (dir: string, doneFiles: Set<string>) => {
    const indexPath = join(dir, "index.json");
    const text = await readTextOrNull(indexPath);
    if (text === null) {
      result.missing.push(indexPath);
      return;
    }
    await sign(indexPath, `${indexPath}.asc`);
    result.documents.push(indexPath.slice(pub.length + 1));
    // The content-named copies channels.json points at, current and retained (versioned-index.ts).
    for (const copy of await listIndexCopies(dir)) {
      await sign(copy, `${copy}.asc`);
      result.documents.push(copy.slice(pub.length + 1));
    }
    const images = parseIndex(text, indexPath).images;
    if (images.length === 0) return;
    const latest = images[images.length - 1].version; // the last entry, as the reference (§9.8)
    for (const img of [...images].reverse()) {
      if (!opts.all && img.version !== latest && img.type !== "delta") continue;
      for (const f of img.files) {
        const tar = pub + f.path;
        if (doneFiles.has(tar)) continue;
        doneFiles.add(tar);
        if (!exists(tar)) {
          result.missing.push(tar);
          continue;
        }
        await sign(tar, pub + f.signature);
        result.files++;
        const side = sidecarPath(tar);
        if (tar.endsWith(".tar.xz") && exists(side)) {
          await sign(side, `${side}.asc`);
          result.files++;
        }
      }
    }
  };
  // On the tree's queue, so no change queued in this process interleaves.
  const runner = new Runner(Runner.context(config, pub, r.treeOpts), r.treeOpts);
  await withLock(config.state_path, lockOptions(r, "re-sign the indexes"), () =>
    runner.run("re_sign_indexes", [], async () => {
      const channelsPath = join(pub, "channels.json");
      const channels = parseChannels((await readTextOrNull(channelsPath)) ?? "", channelsPath);
      if (exists(channelsPath)) {
        await sign(channelsPath, `${channelsPath}.asc`);
        result.documents.push("channels.json");
      }
      const dirs = new Set<string>();
      for (const ch of Object.values(channels)) {
        if (Object.hasOwn(ch, "redirect")) continue; // a channel redirect has no files of its own
        for (const entry of Object.values(ch.devices)) dirs.add(deviceDirOf(pub, entry.index));
      }
      const doneFiles = new Set<string>();
      for (const dir of dirs) await signDevice(dir, doneFiles);
    }),
  );
  return result;
}

export function describeReSign(r: ReSignResult): string[] {
  const lines = [
    `I: re-signed ${r.documents.length} document${r.documents.length === 1 ? "" : "s"} and ${r.files} file${r.files === 1 ? "" : "s"}`,
  ];
  for (const m of r.missing) lines.push(`W: missing, not signed: ${m}`);
  return lines;
}
