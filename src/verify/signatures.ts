/**
 * One detached signature judged by the client's rule (client-protocol §4.3: a valid signature
 * by a PRIMARY key of the allowed keyrings, minus the blacklist), blaming the file that is
 * actually damaged: the `.asc` when its armour is broken or the signer is not allowed, the
 * signed file when the bytes no longer match. The SHA-256 of every file read is kept, so an
 * image is read once for its signature and its index checksum.
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { SignatureError } from "../errors.js";
import { HashingStream, hashStream } from "../io/hashing.js";
import type { PublicKeyInfo } from "../pgp/keys.js";
import { verifyDetached } from "../pgp/verify.js";
import { armorDamage } from "./armor.js";
import type { Reporter } from "./report.js";

/** The keys allowed to sign one object, for messages named like the client's keyrings. */
export interface Trust {
  label: string;
  keys: PublicKeyInfo[];
  /** Blacklisted primary fingerprints (lowercase hex). */
  blacklist: ReadonlySet<string>;
}

export interface Digest {
  sha256: string;
  size: number;
}

export class SignatureChecker {
  private readonly digests = new Map<string, Promise<Digest>>();

  constructor(private readonly rep: Reporter) {}

  /** SHA-256 and size of a file, read at most once per run. */
  digest(path: string): Promise<Digest> {
    let d = this.digests.get(path);
    if (!d) {
      d = hashStream(createReadStream(path)).then(({ sha256, bytes }) => ({ sha256, size: bytes }));
      this.digests.set(path, d);
    }
    return d;
  }

  /**
   * Verifies `asc` over `data` (both must exist). Returns true when good, false after
   * reporting a problem, null when `trust` is unknown (its keyring could not be read, which
   * was reported where it happened).
   */
  async check(data: string, asc: string, trust: Trust | null): Promise<boolean | null> {
    const armored = await readFile(asc, "utf8");
    const damage = armorDamage(armored);
    if (damage) {
      this.rep.checked.signatures++;
      this.rep.error(asc, `damaged signature of ${this.rep.name(data)}: ${damage}`);
      return false;
    }
    if (!trust) return null;
    this.rep.checked.signatures++;
    const cached = this.digests.has(data);
    const hashing = new HashingStream();
    const source = createReadStream(data);
    try {
      await verifyDetached(cached ? source : source.pipe(hashing), armored, trust.keys, {
        blacklist: trust.blacklist,
        what: basename(data),
      });
      if (!cached && hashing.finished) this.digests.set(data, Promise.resolve({ sha256: hashing.sha256, size: hashing.bytes }));
      return true;
    } catch (err) {
      if (!(err instanceof SignatureError)) throw err;
      const reason = err.message.replace(/^Bad signature on [^:]*: /, "").replace(/^Cannot verify [^:]*: /, "");
      if (reason === "the data does not match the signature") {
        this.rep.error(data, `does not match its signature ${basename(asc)}: the file changed after it was signed`);
      } else {
        this.rep.error(asc, `is not a valid signature of ${this.rep.name(data)} by ${trust.label}: ${reason}`);
      }
      return false;
    } finally {
      source.destroy();
    }
  }
}

export async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** Union of several trusts (index.json and files: image-signing OR the device keyring). */
export function anyOf(trusts: (Trust | null)[], blacklist: ReadonlySet<string>): Trust | null {
  // One unknown keyring makes the union unknown: checking with the others alone would blame
  // good files for a keyring problem that is already reported.
  if (trusts.length === 0 || trusts.some((t) => t === null)) return null;
  const known = trusts as Trust[];
  return { label: known.map((t) => t.label).join(" or "), keys: known.flatMap((t) => t.keys), blacklist };
}
