/**
 * `si blacklist-key FINGERPRINT`: adds a public key to the blacklist keyring (its fingerprints
 * are subtracted from every verification on devices: client-protocol §4.4), rebuilds
 * blacklist.tar.xz signed by image-master, and publishes it, under the global lock.
 *
 * The key must be one the instance knows (a current or rotated-out public.asc) or come from
 * --key-file. Blacklisting a key the fleet still needs (the current image-signing or either
 * master) would make every device refuse channels.json: refused without --force.
 */
import { readFile } from "node:fs/promises";
import type { Config } from "../config/types.js";
import { KeyError_, UsageError } from "../errors.js";
import { withLock } from "../admin/lock.js";
import { rebuildKeyrings } from "./rebuild.js";
import { keyExists, loadSigningKey } from "../pgp/keys.js";
import type { KeyName } from "../pgp/signer.js";
import { publishKeyringFiles } from "../tree/keyrings.js";
import { instancePublicKeyFiles, readExtraKeys, readKeyFile, writeExtraKeys } from "./key-files.js";

export interface BlacklistOptions {
  keyFile?: string;
  force?: boolean;
  lockWaitMs?: number;
  log?: (line: string) => void;
}

export interface BlacklistResult {
  fingerprint: string;
  /** False when the key was already blacklisted (the keyring is rebuilt and published anyway). */
  added: boolean;
  blacklisted: string[];
}

/** Keys whose loss of trust bricks devices (client-protocol §3 steps 1-4). */
const VITAL: KeyName[] = ["archive-master", "image-master", "image-signing"];

export function normalizeFingerprint(input: string): string {
  const fpr = input.replace(/\s+/g, "").replace(/^0x/i, "").toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(fpr)) {
    throw new UsageError(`Cannot blacklist '${input}': give the full 40-hex-digit v4 fingerprint (gpg --fingerprint)`);
  }
  return fpr;
}

async function findKey(config: Config, fpr: string, keyFile?: string): Promise<Uint8Array> {
  const files = keyFile ? [keyFile] : await instancePublicKeyFiles(config.gpg_key_path);
  for (const f of files) {
    let data: Buffer;
    try {
      data = await readFile(f);
    } catch (err) {
      throw new KeyError_(`Cannot read key file ${f}: ${(err as Error).message}`);
    }
    const keys = await readKeyFile(data).catch((err: Error) => {
      if (keyFile) throw new KeyError_(`Cannot read key file ${f}: ${err.message}`);
      return [];
    });
    const hit = keys.find((k) => k.fingerprint === fpr);
    if (hit) return hit.binary;
  }
  throw new KeyError_(
    keyFile
      ? `Cannot blacklist ${fpr.toUpperCase()}: ${keyFile} holds no key with that fingerprint`
      : `Cannot blacklist ${fpr.toUpperCase()}: not one of this instance's keys under ${config.gpg_key_path} (give its public key with --key-file)`,
  );
}

export async function blacklistKey(config: Config, fingerprint: string, opts: BlacklistOptions = {}): Promise<BlacklistResult> {
  const fpr = normalizeFingerprint(fingerprint);
  const log = opts.log ?? (() => {});
  return withLock(config.state_path, { waitMs: opts.lockWaitMs ?? 60_000, what: "blacklist a key", onWait: log }, async () => {
    for (const name of VITAL) {
      if (!(await keyExists(config.gpg_key_path, name))) continue;
      const k = await loadSigningKey(config.gpg_key_path, name);
      if (k.fingerprint.toLowerCase() === fpr && !opts.force) {
        throw new KeyError_(
          `Cannot blacklist ${fpr.toUpperCase()}: it is the current ${name} key, and every device would then refuse ` +
            `${name === "image-signing" ? "channels.json" : "the keyrings it signs"}; rotate it first (si rotate-key image-signing) or use --force`,
        );
      }
    }
    if (!(await keyExists(config.gpg_key_path, "blacklist")) || !(await keyExists(config.gpg_key_path, "image-master"))) {
      throw new KeyError_(
        `Cannot blacklist ${fpr.toUpperCase()}: the blacklist keyring needs the blacklist and image-master keys under ${config.gpg_key_path}`,
      );
    }
    const binary = await findKey(config, fpr, opts.keyFile);
    const list = await readExtraKeys(config.gpg_key_path, "blacklist");
    const added = !list.some((k) => k.fingerprint === fpr);
    if (added) await writeExtraKeys(config.gpg_key_path, "blacklist", [...list, { binary }]);
    await rebuildKeyrings(config, { only: ["blacklist"], force: true });
    await publishKeyringFiles(config.publish_path, config.gpg_keyring_path, "blacklist");
    log(`I: published the blacklist keyring`);
    const blacklisted = (await readExtraKeys(config.gpg_key_path, "blacklist")).map((k) => k.fingerprint);
    return { fingerprint: fpr, added, blacklisted };
  });
}
