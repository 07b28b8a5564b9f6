/** Applies the keyring plan: writes `<gpg_keyring_path>/<name>.tar.xz` and its signature. */
import { mkdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { KeyError_ } from "../errors.js";
import { keyExists, loadPublicKeyFile } from "./keys.js";
import { writeKeyringTarball } from "./keyring.js";
import { expiryFrom, keyringPlan } from "./keyring-plan.js";
import type { KeyName, Signer } from "./signer.js";

export interface KeyringBuildOptions {
  keyPath: string;
  keyringPath: string;
  signer: Signer;
  imageSigningDays: number;
  deviceSigningDays: number;
  force?: boolean;
  now?: Date;
  xzLevel?: number;
  /** Build only these keyrings (default: every one whose keys exist). */
  only?: KeyName[];
}

export interface KeyringBuilt {
  name: KeyName;
  path: string;
  expiry?: number;
  signer: KeyName;
}

/**
 * Public keys a keyring holds beyond its plan members: `<gpg_key_path>/<name>/keyring-extra.gpg`
 * (binary). For image-signing it is the previous key after `si rotate-key`, for the blacklist
 * the blacklisted keys (`si blacklist-key`); a rebuild must never drop them (src/keys/).
 */
export const KEYRING_EXTRA = "keyring-extra.gpg";

async function extraKeys(keyPath: string, name: string): Promise<Buffer[]> {
  try {
    return [await readFile(join(keyPath, name, KEYRING_EXTRA))];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

export async function buildKeyrings(opts: KeyringBuildOptions): Promise<{ built: KeyringBuilt[]; skipped: string[] }> {
  const now = opts.now ?? new Date();
  const plan = keyringPlan({ imageSigningDays: opts.imageSigningDays, deviceSigningDays: opts.deviceSigningDays }).filter(
    (k) => !opts.only || opts.only.includes(k.name),
  );
  const built: KeyringBuilt[] = [];
  const skipped: string[] = [];
  const ready = [];
  for (const spec of plan) {
    const missing = [];
    for (const k of spec.requires) if (!(await keyExists(opts.keyPath, k))) missing.push(k);
    if (missing.length) {
      skipped.push(`${spec.name} (missing key: ${missing.join(", ")})`);
      continue;
    }
    ready.push(spec);
  }
  if (!opts.force) {
    const existing = [];
    for (const spec of ready) if (await exists(join(opts.keyringPath, `${spec.name}.tar.xz`))) existing.push(spec.name);
    if (existing.length) {
      throw new KeyError_(
        `Cannot build keyrings: ${existing.map((n) => join(opts.keyringPath, `${n}.tar.xz`)).join(", ")} already exist (use --force to replace them)`,
      );
    }
  }
  await mkdir(opts.keyringPath, { recursive: true, mode: 0o700 });
  for (const spec of ready) {
    const gpg = Buffer.concat([
      ...(await Promise.all(spec.members.map((m) => loadPublicKeyFile(opts.keyPath, m)))),
      ...(await extraKeys(opts.keyPath, spec.name)),
    ]);
    const expiry = expiryFrom(now, spec.expiryDays);
    const dest = join(opts.keyringPath, `${spec.name}.tar.xz`);
    const tmp = join(opts.keyringPath, `.${spec.name}.new.tar.xz`);
    try {
      await writeKeyringTarball(tmp, { type: spec.name, expiry }, gpg, { now, xzLevel: opts.xzLevel });
      await opts.signer.signFile(spec.signer, tmp, tmp + ".asc");
      // Tarball first, then its signature: both are complete files before either rename.
      await rename(tmp, dest);
      await rename(tmp + ".asc", dest + ".asc");
    } finally {
      await unlink(tmp).catch(() => {});
      await unlink(tmp + ".asc").catch(() => {});
    }
    built.push({ name: spec.name, path: dest, expiry, signer: spec.signer });
  }
  return { built, skipped };
}
