/**
 * `keyring` (server-reference §5.4.6): ships `gpg_keyring_path/<name>.tar.xz(.asc)` inside
 * the image as `system/usr/share/system-image/archive-master.tar.xz(.asc)`, where
 * system-image client 3.x reads the archive-master keyring. The member names always say
 * archive-master, whatever keyring is named.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GnuTarWriter, type TarHeader } from "../archive/tar/index.js";
import { GeneratorError } from "../errors.js";
import { requireArgs } from "./args.js";
import { poolPath, publishPoolFile, xzProducer } from "./pool.js";
import { checkedItem, makeOrigin, reuseOwned, type OwnerClaim } from "./pool-owner.js";
import type { Generator } from "./types.js";

const MEMBER = "system/usr/share/system-image/archive-master.tar.xz";

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

async function readKeyringFile(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GeneratorError(
      `${what} ${path} ${code === "ENOENT" ? "does not exist (run 'si generate-keyrings')" : `cannot be read (${code})`}`,
    );
  }
}

export const keyring: Generator = async (ctx, args, env) => {
  if (env.new_files.length === 0) return null;
  requireArgs(args, ["name"]);
  const name = args[0];
  if (name.includes("/")) throw new GeneratorError(`invalid keyring name '${name}'`);
  const base = join(ctx.config.gpg_keyring_path, name);
  const tarball = await readKeyringFile(`${base}.tar.xz`, "keyring");
  const signature = await readKeyringFile(`${base}.tar.xz.asc`, "keyring signature");
  const hash = sha256(`${sha256(tarball)}/${sha256(signature)}`);
  const path = poolPath(ctx, `keyring-${hash}.tar.xz`);
  const detail = checkedItem(`${base}.tar.xz`, "keyring", name);
  // The name is public (hashes of the published keyring): another source (a remote upstream
  // listing /pool/keyring-<hash>.tar.xz) must not supply the keyring every image ships.
  const claim: OwnerClaim = {
    origin: makeOrigin(env, "keyring", { version: hash }),
    identity: ["generator", "version"],
    legacy: (s) => s.generator === "keyring" && s.version === hash,
  };
  // Appended whether or not the file exists (§5.4.6 step 5); the sidecar's is not used.
  const reused = await reuseOwned(ctx, { ...env, version_detail: [] }, path, detail, claim);
  env.version_detail.push(detail);
  if (reused) return path;

  // root_ownership (§5.3): 0644, now, root; uid/gid 0 (the reference kept the file's, a quirk).
  const mtime = Math.floor(ctx.clock().getTime() / 1000);
  const entry = (memberName: string, data: Buffer): TarHeader => ({
    name: memberName,
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: "root",
    gname: "root",
    mtime,
    size: data.length,
  });
  await publishPoolFile(
    xzProducer(ctx, async (xz) => {
      const tar = new GnuTarWriter(xz);
      await tar.add(entry(MEMBER, tarball), tarball);
      await tar.add(entry(`${MEMBER}.asc`, signature), signature);
      await tar.finish();
    }),
    path,
    ctx,
    { sidecar: { generator: "keyring", version: hash, version_detail: detail, path: base } },
  );
  ctx.log(`I: wrote ${path}`);
  return path;
};
