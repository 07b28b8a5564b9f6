/**
 * The Signer used everywhere: keys from `gpg_key_path`, SHA-512 hashed by Node while the
 * bytes pass, RSA PKCS#1 v1.5 by OpenSSL, armour by openpgp.js. Signing memory is a hash
 * state, independent of the data size.
 */
import { constants, privateEncrypt } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import type { Readable } from "node:stream";
import * as openpgp from "openpgp";
import { loadSigningKey, type SigningKey } from "./keys.js";
import { DIGEST_INFO, HASH_SHA512, finishDigest, newHash, signatureData, signaturePacket } from "./packets.js";
import type { KeyName, Signer, StreamSignature } from "./signer.js";

/**
 * ASCII armour with the CRC-24 line: without it GnuPG (2.2 here, 1.4 on devices) misreads
 * the end line as data whenever the packet length is a multiple of 3, and the check fails.
 */
export function armorSignature(packet: Uint8Array): string {
  return openpgp.armor(openpgp.enums.armor.signature, packet, undefined, undefined, undefined, true);
}

/** Signature over everything fed to update(), made by `key`'s primary key. */
export function beginSignature(key: SigningKey, now: () => Date = () => new Date()): StreamSignature {
  const hash = newHash(HASH_SHA512);
  return {
    update(chunk) {
      hash.update(chunk);
    },
    async finish() {
      const sigData = signatureData(now(), key.fingerprintBytes, HASH_SHA512);
      const digest = finishDigest(hash, sigData);
      const rsa = privateEncrypt(
        { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING },
        Buffer.concat([DIGEST_INFO[HASH_SHA512], digest]),
      );
      return armorSignature(signaturePacket(sigData, key.keyId, digest, rsa));
    },
  };
}

/** Writes `text` to `dest` through a temporary sibling, fsync and rename. */
export async function writeFileAtomic(dest: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = join(dirname(dest), `.${basename(dest)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const fh = await open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  await rename(tmp, dest);
}

export class LocalSigner implements Signer {
  private readonly keys = new Map<string, Promise<SigningKey>>();
  constructor(
    private readonly keyPath: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  key(name: KeyName): Promise<SigningKey> {
    let k = this.keys.get(name);
    if (!k) {
      k = loadSigningKey(this.keyPath, name);
      // A failed load is not cached: the operator may fix the file and retry in the shell.
      k.catch(() => this.keys.delete(name));
      this.keys.set(name, k);
    }
    return k;
  }

  async begin(name: KeyName): Promise<StreamSignature> {
    return beginSignature(await this.key(name), this.now);
  }

  async signStream(name: KeyName, data: Readable): Promise<string> {
    const sig = await this.begin(name);
    for await (const chunk of data) sig.update(chunk as Uint8Array);
    return sig.finish();
  }

  async signFile(name: KeyName, path: string, dest = path + ".asc"): Promise<void> {
    const armored = await this.signStream(name, createReadStream(path));
    await writeFileAtomic(dest, armored);
  }
}
