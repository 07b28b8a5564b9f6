/**
 * Key files for the lifecycle commands: keeping a replaced private key, installing a new pair
 * without a window where `private.asc` or `public.asc` is partial (temp + fsync + rename), and
 * the `keyring-extra.gpg` list of extra public keys a keyring keeps across rebuilds.
 */
import { chmod, mkdir, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { KEYRING_EXTRA } from "../pgp/keyring-build.js";
import { keyDir } from "../pgp/keys.js";
import { writeFileAtomic } from "../pgp/local-signer.js";

/** `YYYYMMDD` of `now` (UTC), the suffix of a kept key. */
export function dateTag(now: Date): string {
  return now.toISOString().slice(0, 10).replaceAll("-", "");
}

async function missing(p: string): Promise<boolean> {
  return stat(p).then(
    () => false,
    () => true,
  );
}

/**
 * Copies `private.asc`/`public.asc` of `name` to `private.asc.old-<date>` (0600) and
 * `public.asc.old-<date>`; a second rotation the same day gets `-2`, `-3`, ... Returns the
 * private copy's path.
 */
export async function keepOldKey(keyPath: string, name: string, now: Date): Promise<string> {
  const dir = keyDir(keyPath, name);
  let suffix = `old-${dateTag(now)}`;
  for (let n = 2; !(await missing(join(dir, `private.asc.${suffix}`))); n++) suffix = `old-${dateTag(now)}-${n}`;
  const priv = join(dir, `private.asc.${suffix}`);
  // Written through a 0600 temporary: the copy is never readable by others, not even briefly.
  await writeFileAtomic(priv, await readFile(join(dir, "private.asc")), 0o600);
  await chmod(priv, 0o600);
  await writeFileAtomic(join(dir, `public.asc.${suffix}`), await publicOfPrivate(keyPath, name), 0o644);
  return priv;
}

/**
 * The public key of `<name>/private.asc`, derived from the private key itself: after a crash
 * between writing a new public.asc and its private.asc, public.asc is not the key in use.
 */
export async function publicOfPrivate(keyPath: string, name: string): Promise<string> {
  const key = await openpgp.readPrivateKey({ armoredKey: await readFile(join(keyDir(keyPath, name), "private.asc"), "utf8") });
  return key.toPublic().armor();
}

/** Installs a key pair: public first, then private, each by atomic rename (private 0600). */
export async function installKeyPair(keyPath: string, name: string, privateArmored: string, publicArmored: string): Promise<void> {
  const dir = keyDir(keyPath, name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeFileAtomic(join(dir, "public.asc"), publicArmored, 0o644);
  await writeFileAtomic(join(dir, "private.asc"), privateArmored, 0o600);
}

/** Every public key file the instance holds: current ones and those kept by rotations. */
export async function instancePublicKeyFiles(keyPath: string): Promise<string[]> {
  const out: string[] = [];
  const names = await readdir(keyPath).catch(() => [] as string[]);
  for (const name of names.sort()) {
    const files = await readdir(join(keyPath, name)).catch(() => [] as string[]);
    for (const f of files.sort()) if (f === "public.asc" || f.startsWith("public.asc.old-")) out.push(join(keyPath, name, f));
  }
  return out;
}

/** The primary fingerprint (lowercase hex) and binary packets of each key in an armoured or binary file. */
export async function readKeyFile(data: Uint8Array | string): Promise<Array<{ fingerprint: string; binary: Uint8Array }>> {
  const keys =
    typeof data === "string" || (data.length > 0 && data[0] === 0x2d) // "-----BEGIN"
      ? await openpgp.readKeys({ armoredKeys: typeof data === "string" ? data : Buffer.from(data).toString("utf8") })
      : await openpgp.readKeys({ binaryKeys: data });
  return keys.map((k) => ({ fingerprint: k.getFingerprint().toLowerCase(), binary: k.toPublic().write() }));
}

/** Extra public keys of keyring `name` (see KEYRING_EXTRA). */
export async function readExtraKeys(keyPath: string, name: string): Promise<Array<{ fingerprint: string; binary: Uint8Array }>> {
  let data: Buffer;
  try {
    data = await readFile(join(keyDir(keyPath, name), KEYRING_EXTRA));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return data.length ? readKeyFile(data) : [];
}

export async function writeExtraKeys(keyPath: string, name: string, keys: Array<{ binary: Uint8Array }>): Promise<void> {
  await writeFileAtomic(join(keyDir(keyPath, name), KEYRING_EXTRA), Buffer.concat(keys.map((k) => Buffer.from(k.binary))), 0o644);
}
