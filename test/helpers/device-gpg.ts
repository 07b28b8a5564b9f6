/**
 * GnuPG as the device uses it (client-protocol §4.3), with REAL gpg: a keyring tarball is
 * unpacked like tarfile.extractall, and an .asc is accepted only when `gpg --verify` succeeds
 * AND the VALIDSIG fingerprint is a primary-key fingerprint of the allowed keyrings that is
 * not in the blacklist (python-gnupg reports the signing key, so a subkey never matches).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { GpgHome, type GpgResult } from "./gpg.js";

export interface UnpackedKeyring {
  /** keyring.json as parsed (undefined when absent or not JSON). */
  json?: Record<string, unknown>;
  jsonText?: string;
  /** keyring.gpg bytes (undefined when absent). */
  gpg?: Buffer;
}

/** `tar -xJf` into a scratch directory, then read keyring.json and keyring.gpg. */
export function unpackKeyring(tarball: string, scratch: string): UnpackedKeyring {
  const dir = mkdtempSync(join(scratch, "keyring-"));
  try {
    execFileSync("tar", ["--numeric-owner", "-xJf", tarball, "-C", dir], { stdio: ["ignore", "ignore", "pipe"] });
    const out: UnpackedKeyring = {};
    if (existsSync(join(dir, "keyring.json"))) {
      out.jsonText = readFileSync(join(dir, "keyring.json"), "utf8");
      try {
        out.json = JSON.parse(out.jsonText) as Record<string, unknown>;
      } catch {
        /* reported by the caller as a missing type */
      }
    }
    if (existsSync(join(dir, "keyring.gpg"))) out.gpg = readFileSync(join(dir, "keyring.gpg"));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A throwaway GnuPG home holding exactly these keyrings' keys. */
function homeWith(keyrings: Buffer[]): GpgHome {
  const home = new GpgHome();
  for (const k of keyrings) {
    // gpg --import refuses an empty file (the usual blacklist): it simply adds no key.
    if (k.length === 0) continue;
    // --no-autostart: public keys need no gpg-agent, and one agent per throwaway home would
    // outlive the home by minutes.
    execFileSync("gpg", ["--homedir", home.dir, "--batch", "--quiet", "--no-autostart", "--import"], {
      input: k,
      stdio: ["pipe", "ignore", "ignore"],
    });
  }
  return home;
}

/** Primary-key fingerprints (upper-case hex) of the keys in the keyrings. */
export function primaryFingerprints(keyrings: Buffer[]): Set<string> {
  const home = homeWith(keyrings);
  try {
    const listing = execFileSync("gpg", ["--homedir", home.dir, "--batch", "--with-colons", "--list-keys"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const out = new Set<string>();
    let afterPub = false;
    for (const line of listing.split("\n")) {
      const f = line.split(":");
      if (f[0] === "pub") afterPub = true;
      else if (f[0] === "fpr" && afterPub) {
        out.add(f[9].toUpperCase());
        afterPub = false;
      } else if (f[0] !== "fpr") afterPub = false;
    }
    return out;
  } finally {
    rmSync(home.dir, { recursive: true, force: true });
  }
}

/** Plain `gpg --verify asc data` with only these keyrings (what the recovery runs). */
export function gpgVerify(asc: string, data: string, keyrings: Buffer[]): GpgResult {
  const home = homeWith(keyrings);
  try {
    return home.verify(asc, data);
  } finally {
    rmSync(home.dir, { recursive: true, force: true });
  }
}

/**
 * gpg.Context(*keyrings, blacklist=...).verify(asc, data) of the client: gpg must verify it,
 * and the signer must be a primary key of `keyrings` that the blacklist does not hold.
 */
export function clientVerify(asc: string, data: string, keyrings: Buffer[], blacklist?: Buffer): { ok: boolean; why: string } {
  const r = gpgVerify(asc, data, keyrings);
  if (!r.ok) return { ok: false, why: `gpg --verify failed: ${r.output.trim().split("\n").pop()}` };
  const allowed = primaryFingerprints(keyrings);
  const banned = blacklist ? primaryFingerprints([blacklist]) : new Set<string>();
  const signer = r.validSig!.toUpperCase();
  if (!allowed.has(signer)) return { ok: false, why: `signer ${signer} is not a primary key of the keyring (primary ${r.primary})` };
  if (banned.has(signer)) return { ok: false, why: `signer ${signer} is blacklisted` };
  return { ok: true, why: "" };
}
