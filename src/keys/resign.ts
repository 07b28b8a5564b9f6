/**
 * Re-signs, with the current `key`, every detached signature a replaced key made: found by the
 * issuer fingerprint inside each `.asc` (our signer always writes it: src/pgp/packets.ts),
 * so signatures by other keys (keyrings signed by image-master, ...) are left alone.
 * Each `.asc` is replaced by an atomic rename (Signer.signFile); the signed bytes never change.
 */
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as openpgp from "openpgp";
import type { KeyName, Signer } from "../pgp/signer.js";

/** Issuer fingerprints (lowercase hex; key ids when no fingerprint) of an armoured signature. */
export async function signatureIssuers(armored: string): Promise<string[]> {
  try {
    const sig = await openpgp.readSignature({ armoredSignature: armored });
    return sig.packets.map((p) =>
      p.issuerFingerprint ? Buffer.from(p.issuerFingerprint).toString("hex") : (p.issuerKeyID?.toHex() ?? ""),
    );
  } catch {
    return []; // unreadable: not ours to repair (verify-tree reports it)
  }
}

/** Regular `.asc` files under `dir`, skipping hidden temporaries and symlinks; sorted. */
export async function listSignatures(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith(".")) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && e.name.endsWith(".asc")) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/** True when `asc` was made by a key whose fingerprint is `fpr` (or whose key id ends it). */
export async function signedBy(asc: string, fpr: string): Promise<boolean> {
  const text = await readFile(asc, "utf8").catch(() => "");
  return (await signatureIssuers(text)).some((i) => i !== "" && (i === fpr || fpr.endsWith(i)));
}

/**
 * Re-signs each listed signature made by `oldFpr`, with `key`. Returns the files re-signed.
 * A signature whose data file is gone is skipped (verify-tree reports the orphan).
 */
export async function resignFrom(
  signer: Signer,
  key: KeyName,
  oldFpr: string,
  ascs: string[],
  onFile?: (p: string) => void,
): Promise<string[]> {
  const done: string[] = [];
  for (const asc of ascs) {
    if (!(await signedBy(asc, oldFpr))) continue;
    const data = asc.slice(0, -4);
    const st = await lstat(data).catch(() => null);
    if (!st?.isFile()) continue;
    await signer.signFile(key, data, asc);
    done.push(asc);
    onFile?.(asc);
  }
  return done;
}
