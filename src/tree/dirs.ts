/**
 * Directory moves and deletes for channel renames and removals. Nested channels share the
 * parent's directory (`a` and `a/b`), so both helpers skip sub-directories that belong to
 * another channel instead of taking them along.
 */
import { copyFile, link, mkdir, readdir, readlink, rm, rmdir, symlink } from "node:fs/promises";
import { join } from "node:path";

/**
 * Hard-link mirror of `src` at `dest` (which must not exist): the old directory stays intact
 * and readable until the new documents are committed. Falls back to copying where hard links
 * are impossible (another filesystem, or one that refuses them).
 */
export async function mirrorDir(src: string, dest: string, skip: ReadonlySet<string>): Promise<void> {
  await mkdir(dest);
  for (const e of await readdir(src, { withFileTypes: true })) {
    const from = join(src, e.name);
    const to = join(dest, e.name);
    if (skip.has(from)) continue;
    if (e.isDirectory()) await mirrorDir(from, to, skip);
    else if (e.isSymbolicLink()) await symlink(await readlink(from), to);
    else {
      await link(from, to).catch(async (err: NodeJS.ErrnoException) => {
        if (!["EXDEV", "EPERM", "ENOTSUP", "EMLINK"].includes(err.code ?? "")) throw err;
        await copyFile(from, to);
      });
    }
  }
}

/** rm -rf `dir`, except the paths in `keep` (and the directories leading to them). */
export async function removeDirExcept(dir: string, keep: ReadonlySet<string>): Promise<void> {
  if (keep.size === 0 || ![...keep].some((k) => k.startsWith(dir + "/"))) {
    await rm(dir, { recursive: true, force: true });
    return;
  }
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (keep.has(p)) continue;
    if (e.isDirectory() && [...keep].some((k) => k.startsWith(p + "/"))) await removeDirExcept(p, keep);
    else await rm(p, { recursive: true, force: true });
  }
  await rmdir(dir).catch(() => {});
}
