/**
 * publish_keyring (server-reference §7.1): `<gpg_keyring_path>/<name>.tar.xz(.asc)` copied to
 * `<tree>/gpg/`, each through a temporary sibling and rename, so devices never fetch a
 * half-copied keyring.
 */
import { copyFile, mkdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { TreeError } from "../errors.js";
import { assertSegmentName } from "../model/names.js";
import { fsyncDir, tempSibling } from "./commit.js";
import { exists } from "./paths.js";

export async function publishKeyringFiles(root: string, keyringPath: string, name: string): Promise<void> {
  assertSegmentName(name, "keyring", "publish keyring");
  const src = join(keyringPath, name);
  if (!exists(`${src}.tar.xz`)) throw new TreeError(`Missing keyring: ${src}.tar.xz`, "Exception");
  if (!exists(`${src}.tar.xz.asc`)) throw new TreeError(`Missing keyring signature: ${src}.tar.xz.asc`, "Exception");
  const gpg = join(root, "gpg");
  await mkdir(gpg).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  const copies: Array<[string, string]> = [];
  try {
    for (const ext of [".tar.xz", ".tar.xz.asc"]) {
      const dest = join(gpg, name + ext);
      copies.push([tempSibling(dest), dest]);
      await copyFile(`${src}${ext}`, copies.at(-1)![0]);
    }
  } catch (err) {
    for (const [tmp] of copies) await unlink(tmp).catch(() => {});
    throw err;
  }
  // Tarball first, then its signature: the same order as every document commit (commit.ts).
  for (const [tmp, dest] of copies) await rename(tmp, dest);
  await fsyncDir(gpg);
}
