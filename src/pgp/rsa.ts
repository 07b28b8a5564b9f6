/**
 * Bridges openpgp.js RSA key material to Node KeyObjects, so the RSA operation itself runs in
 * OpenSSL on a digest we computed while streaming.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";

function b64u(bytes: Uint8Array | bigint): string {
  if (typeof bytes === "bigint") {
    let hex = bytes.toString(16);
    if (hex.length % 2) hex = "0" + hex;
    return Buffer.from(hex, "hex").toString("base64url");
  }
  return Buffer.from(bytes).toString("base64url");
}

function big(bytes: Uint8Array): bigint {
  return BigInt("0x" + (Buffer.from(bytes).toString("hex") || "0"));
}

export interface RsaPublicParams {
  n: Uint8Array;
  e: Uint8Array;
}
export interface RsaPrivateParams {
  d: Uint8Array;
  p: Uint8Array;
  q: Uint8Array;
  u: Uint8Array;
}

export function rsaPublicKey(pub: RsaPublicParams): KeyObject {
  return createPublicKey({ key: { kty: "RSA", n: b64u(pub.n), e: b64u(pub.e) }, format: "jwk" });
}

export function rsaPrivateKey(pub: RsaPublicParams, priv: RsaPrivateParams): KeyObject {
  // OpenPGP stores p < q and u = p^-1 mod q; a JWK wants qi = q^-1 mod p, so the
  // roles of p and q swap and u becomes qi.
  const d = big(priv.d);
  const p = big(priv.p);
  const q = big(priv.q);
  return createPrivateKey({
    key: {
      kty: "RSA",
      n: b64u(pub.n),
      e: b64u(pub.e),
      d: b64u(priv.d),
      p: b64u(priv.q),
      q: b64u(priv.p),
      dp: b64u(d % (q - 1n)),
      dq: b64u(d % (p - 1n)),
      qi: b64u(priv.u),
    },
    format: "jwk",
  });
}
