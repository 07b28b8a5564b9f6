/**
 * OpenPGP v4 detached-signature packets, built from a digest that Node's crypto computed
 * while the data streamed past (RFC 4880 §5.2.3-§5.2.4). openpgp.js buffers a whole file to
 * sign it (494 MB peak on a 213 MB tarball); hashing in Node keeps signing memory flat.
 *
 * Only what the client accepts is produced: a binary-document (0x00) signature, RSA,
 * SHA-512, made by the primary key (client-protocol §4.3: subkey signatures are rejected).
 */
import { createHash, type Hash } from "node:crypto";

export const SIG_BINARY = 0x00;
export const PK_RSA = 1;
/** RFC 4880 §9.4 hash ids -> Node digest names (what a verifier may meet in the wild). */
export const HASHES: Record<number, string> = { 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224" };
export const HASH_SHA512 = 10;

/** DER DigestInfo prefixes for PKCS#1 v1.5 (RFC 4880 §5.2.2). */
export const DIGEST_INFO: Record<number, Buffer> = {
  8: Buffer.from("3031300d060960864801650304020105000420", "hex"),
  9: Buffer.from("3041300d060960864801650304020205000430", "hex"),
  10: Buffer.from("3051300d060960864801650304020305000440", "hex"),
  11: Buffer.from("302d300d06096086480165030402040500041c", "hex"),
};

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function subpacket(type: number, body: Buffer): Buffer {
  // All our subpackets are < 192 bytes: one-octet length (RFC 4880 §5.2.3.1).
  return Buffer.concat([Buffer.from([body.length + 1, type]), body]);
}

/** The hashed part of a v4 signature: version .. hashed subpackets (RFC 4880 §5.2.4). */
export function signatureData(created: Date, fingerprint: Buffer, hashAlgo = HASH_SHA512): Buffer {
  const hashed = Buffer.concat([
    subpacket(2, u32(Math.floor(created.getTime() / 1000))), // signature creation time
    subpacket(33, Buffer.concat([Buffer.from([4]), fingerprint])), // issuer fingerprint (v4)
  ]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(hashed.length);
  return Buffer.concat([Buffer.from([4, SIG_BINARY, PK_RSA, hashAlgo]), len, hashed]);
}

/** The v4 trailer hashed after the signature data: 0x04 0xFF + length (RFC 4880 §5.2.4). */
export function trailer(sigData: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([4, 0xff]), u32(sigData.length)]);
}

/** Finishes a data hash the way a v4 signature needs: data || sigData || trailer. */
export function finishDigest(hash: Hash, sigData: Uint8Array): Buffer {
  hash.update(sigData);
  hash.update(trailer(sigData));
  return hash.digest();
}

function mpi(value: Buffer): Buffer {
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  const v = value.subarray(i);
  const bits = (v.length - 1) * 8 + (v[0] === 0 ? 0 : 32 - Math.clz32(v[0]));
  const head = Buffer.alloc(2);
  head.writeUInt16BE(bits);
  return Buffer.concat([head, v]);
}

function packetLength(n: number): Buffer {
  if (n < 192) return Buffer.from([n]);
  if (n < 8384) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  return Buffer.concat([Buffer.from([0xff]), u32(n)]);
}

/** A complete signature packet (new-format tag 2). */
export function signaturePacket(sigData: Buffer, keyId: Buffer, digest: Buffer, rsaSignature: Buffer): Buffer {
  const unhashed = subpacket(16, keyId); // issuer key ID, for verifiers that want it
  const ulen = Buffer.alloc(2);
  ulen.writeUInt16BE(unhashed.length);
  const body = Buffer.concat([sigData, ulen, unhashed, digest.subarray(0, 2), mpi(rsaSignature)]);
  return Buffer.concat([Buffer.from([0xc2]), packetLength(body.length), body]);
}

export function newHash(hashAlgo = HASH_SHA512): Hash {
  return createHash(HASHES[hashAlgo]);
}
