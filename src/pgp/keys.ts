/**
 * The instance's signing keys on disk: `<gpg_key_path>/<name>/private.asc` (mode 0600, in a
 * 0700 directory) and `public.asc` beside it. Keys are RSA and primary-only: the primary key
 * signs, because the client accepts only primary-key fingerprints (client-protocol §4.3), and
 * devices' GnuPG 1.4 cannot verify ECC (client-protocol §4.3, "Key algorithm").
 */
import { mkdir, readFile, rename, stat, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import type { KeyObject } from "node:crypto";
import * as openpgp from "openpgp";
import { KeyError_ } from "../errors.js";
import type { KeyName } from "./signer.js";
import { rsaPrivateKey, rsaPublicKey, type RsaPrivateParams, type RsaPublicParams } from "./rsa.js";

export interface SigningKey {
  name: string;
  /** Lowercase hex v4 fingerprint of the primary key. */
  fingerprint: string;
  fingerprintBytes: Buffer;
  keyId: Buffer;
  privateKey: KeyObject;
  /** The public key as binary OpenPGP packets (what keyring.gpg holds). */
  publicBinary: Uint8Array;
}

export interface PublicKeyInfo {
  fingerprint: string;
  keyId: string;
  bits: number;
  userIds: string[];
  publicKey: KeyObject;
}

const RSA_ALGOS = new Set(["rsaEncryptSign", "rsaSign"]);

/** Reference user IDs (server-reference §3.6), with the operator's prefix. */
export const KEY_TITLES: Record<KeyName, string> = {
  "archive-master": "Archive Master key",
  "image-master": "Image Master key",
  "image-signing": "Image Signing key",
  "device-signing": "Device Signing key",
  blacklist: "Blacklist Signing key",
};

export async function generateKey(opts: { name: string; email: string; bits: number }): Promise<{
  privateArmored: string;
  publicArmored: string;
  fingerprint: string;
}> {
  if (![2048, 3072, 4096].includes(opts.bits)) {
    throw new KeyError_(`Cannot generate key '${opts.name}': --bits must be 2048, 3072 or 4096, not ${opts.bits}`);
  }
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: "rsa",
    rsaBits: opts.bits,
    userIDs: [{ name: opts.name, email: opts.email }],
    subkeys: [], // primary key only: it certifies and signs
    format: "object",
  });
  return {
    privateArmored: privateKey.armor(),
    publicArmored: publicKey.armor(),
    fingerprint: privateKey.getFingerprint(),
  };
}

export function keyDir(keyPath: string, name: string): string {
  return join(keyPath, name);
}

export async function keyExists(keyPath: string, name: string): Promise<boolean> {
  try {
    await stat(join(keyPath, name, "private.asc"));
    return true;
  } catch {
    return false;
  }
}

/** Writes a key pair; the private file is created 0600 before any byte is written. */
export async function storeKey(keyPath: string, name: string, privateArmored: string, publicArmored: string): Promise<void> {
  const dir = keyDir(keyPath, name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const tmp = join(dir, `.private.asc.${process.pid}`);
  await writeFile(tmp, privateArmored, { mode: 0o600 });
  await rename(tmp, join(dir, "private.asc"));
  await writeFile(join(dir, "public.asc"), publicArmored, { mode: 0o644 });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message.replace(/^Error [a-z ]+: /i, "") : String(err);
}

/** Loads the secret key `name`; errors name the key and the file. */
export async function loadSigningKey(keyPath: string, name: string): Promise<SigningKey> {
  const file = join(keyDir(keyPath, name), "private.asc");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new KeyError_(`Cannot sign with ${name}: no key at ${file} (run 'si generate-keys' or 'si import-keys')`, "IndexError");
    }
    throw new KeyError_(`Cannot read key ${file}: ${describe(err)}`);
  }
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: text });
  } catch (err) {
    throw new KeyError_(`Cannot read key ${file}: ${describe(err)}`);
  }
  if (!key.isDecrypted()) {
    throw new KeyError_(`Cannot use key ${file}: it is protected by a passphrase; store it unprotected (mode 0600)`);
  }
  const packet = key.keyPacket;
  const algo = key.getAlgorithmInfo().algorithm;
  if (!RSA_ALGOS.has(algo)) {
    throw new KeyError_(`Cannot use key ${file}: algorithm ${algo} is not RSA (devices' GnuPG 1.4 verifies RSA only)`);
  }
  const pub = packet.publicParams as unknown as RsaPublicParams;
  const priv = (packet as unknown as { privateParams: RsaPrivateParams }).privateParams;
  return {
    name,
    fingerprint: key.getFingerprint(),
    fingerprintBytes: Buffer.from(key.getFingerprint(), "hex"),
    keyId: Buffer.from(key.getKeyID().toHex(), "hex"),
    privateKey: rsaPrivateKey(pub, priv),
    publicBinary: key.toPublic().write(),
  };
}

/** Parses binary or armoured public keys (a keyring.gpg, a public.asc, gpg --export output). */
export async function readPublicKeys(data: Uint8Array | string): Promise<PublicKeyInfo[]> {
  const keys =
    typeof data === "string"
      ? await openpgp.readKeys({ armoredKeys: data })
      : data.length === 0
        ? []
        : await openpgp.readKeys({ binaryKeys: data });
  const out: PublicKeyInfo[] = [];
  for (const k of keys) {
    const packet = k.keyPacket;
    if (!RSA_ALGOS.has(k.getAlgorithmInfo().algorithm)) continue; // only RSA can verify on devices
    const pub = packet.publicParams as unknown as RsaPublicParams;
    out.push({
      fingerprint: k.getFingerprint(),
      keyId: k.getKeyID().toHex(),
      bits: pub.n.length * 8,
      userIds: k.getUserIDs(),
      publicKey: rsaPublicKey(pub),
    });
  }
  return out;
}

export async function loadPublicKeyFile(keyPath: string, name: string): Promise<Uint8Array> {
  const file = join(keyDir(keyPath, name), "public.asc");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new KeyError_(`Cannot read public key ${file}: ${describe(err)}`);
  }
  const key = await openpgp.readKey({ armoredKey: text });
  return key.write();
}
