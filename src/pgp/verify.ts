/**
 * Detached-signature verification with the client's rule (client-protocol §4.3):
 * accepted <=> the signature verifies AND was made by a primary key in the trusted set AND
 * that key's fingerprint is not in the blacklist (§4.4). Hashing streams, like signing.
 */
import { constants, publicDecrypt } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import * as openpgp from "openpgp";
import { errorMessage, SignatureError } from "../errors.js";
import type { PublicKeyInfo } from "./keys.js";
import { DIGEST_INFO, HASHES, finishDigest, newHash } from "./packets.js";

export interface Verified {
  /** Fingerprint (lowercase hex) of the primary key that made the signature. */
  fingerprint: string;
  created: Date;
}

interface ParsedSig {
  hashAlgorithm: number;
  signatureData: Uint8Array;
  signedHashValue: Uint8Array;
  s: Uint8Array;
  issuerHex?: string;
  fingerprintHex?: string;
  created: Date;
}

async function parseSignatures(armored: string, what: string): Promise<ParsedSig[]> {
  let sig: openpgp.Signature;
  try {
    sig = await openpgp.readSignature({ armoredSignature: armored });
  } catch (err) {
    throw new SignatureError(`Cannot verify ${what}: unreadable signature (${errorMessage(err)})`);
  }
  const out: ParsedSig[] = [];
  for (const p of sig.packets) {
    // v4 binary-document RSA signatures only: what the reference and our signer produce.
    if (
      p.version !== 4 ||
      p.signatureType !== openpgp.enums.signature.binary ||
      p.publicKeyAlgorithm !== openpgp.enums.publicKey.rsaEncryptSign
    )
      continue;
    if (!HASHES[p.hashAlgorithm as number] || !p.signatureData || !p.signedHashValue) continue;
    const params = (p as unknown as { params: { s: Uint8Array } }).params;
    out.push({
      hashAlgorithm: p.hashAlgorithm as number,
      signatureData: p.signatureData,
      signedHashValue: p.signedHashValue,
      s: params.s,
      issuerHex: p.issuerKeyID?.toHex(),
      fingerprintHex: p.issuerFingerprint ? Buffer.from(p.issuerFingerprint).toString("hex") : undefined,
      created: p.created ?? new Date(0),
    });
  }
  if (out.length === 0) throw new SignatureError(`Cannot verify ${what}: no RSA v4 binary signature in it`);
  return out;
}

function rsaVerifies(key: PublicKeyInfo, sig: ParsedSig, digest: Buffer): boolean {
  const modBytes = Math.ceil(key.bits / 8);
  const s = Buffer.alloc(Math.max(modBytes, sig.s.length));
  Buffer.from(sig.s).copy(s, s.length - sig.s.length);
  try {
    const em = publicDecrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }, s);
    return em.equals(Buffer.concat([DIGEST_INFO[sig.hashAlgorithm], digest]));
  } catch {
    return false;
  }
}

/**
 * Verifies `armored` over `data`; throws SignatureError naming `what` unless a trusted,
 * non-blacklisted primary key made a valid signature.
 */
export async function verifyDetached(
  data: Readable | Uint8Array,
  armored: string,
  trusted: PublicKeyInfo[],
  opts: { blacklist?: Iterable<string>; what?: string } = {},
): Promise<Verified> {
  const what = opts.what ?? "data";
  const sigs = await parseSignatures(armored, what);
  const hashes = new Map(sigs.map((s) => [s.hashAlgorithm, newHash(s.hashAlgorithm)]));
  if (data instanceof Uint8Array) for (const h of hashes.values()) h.update(data);
  else for await (const chunk of data) for (const h of hashes.values()) h.update(chunk as Uint8Array);
  const blacklist = new Set([...(opts.blacklist ?? [])].map((f) => f.toLowerCase()));
  let reason = "no trusted key made it";
  for (const sig of sigs) {
    const digest = finishDigest(hashes.get(sig.hashAlgorithm)!.copy(), sig.signatureData);
    if (digest[0] !== sig.signedHashValue[0] || digest[1] !== sig.signedHashValue[1]) {
      reason = "the data does not match the signature";
      continue;
    }
    // Client rule: the signer must be a *primary* key of the keyring (§4.3); trusted holds
    // primary keys only, so a subkey's fingerprint or key id never matches here.
    const key = trusted.find(
      (k) => (sig.fingerprintHex && k.fingerprint === sig.fingerprintHex) || (!sig.fingerprintHex && k.keyId === sig.issuerHex),
    );
    if (!key) {
      reason = `signed by ${sig.fingerprintHex ?? sig.issuerHex}, which is not in the trusted keyring`;
      continue;
    }
    if (blacklist.has(key.fingerprint)) {
      reason = `signed by blacklisted key ${key.fingerprint}`;
      continue;
    }
    if (!rsaVerifies(key, sig, digest)) {
      reason = "the data does not match the signature";
      continue;
    }
    return { fingerprint: key.fingerprint, created: sig.created };
  }
  throw new SignatureError(`Bad signature on ${what}: ${reason}`);
}

export async function verifyFile(
  path: string,
  armored: string,
  trusted: PublicKeyInfo[],
  opts: { blacklist?: Iterable<string>; what?: string } = {},
): Promise<Verified> {
  return verifyDetached(createReadStream(path), armored, trusted, { what: path, ...opts });
}
