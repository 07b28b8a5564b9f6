/**
 * `si rotate-key image-signing|device-signing`: one operation under the global lock.
 *
 * Why this order (SECURITY.md, "Rotating a key"). A device trusts the image-signing keyring it
 * cached and re-fetches gpg/image-signing.tar.xz only when channels.json fails to verify
 * (client-protocol §3 step 4); index.json, device keyrings and files are then checked with the
 * keyring that verified channels.json, with no second chance. So:
 *   1. keep the old key (`private.asc.old-<date>`, 0600) and install the new one;
 *   2. publish a *transition* keyring holding the new AND the previous key (signed by
 *      image-master): devices that fetch it accept old and new signatures alike;
 *   3. re-sign channels.json with the new key: a device with the old keyring cached now fails
 *      channels.json once, re-fetches the keyring (step 2's) and carries on;
 *   4. wait `graceSeconds`, so a client run that verified the *old* channels.json with an
 *      old-only keyring finishes on old signatures (index, device keyrings, files);
 *   5. re-sign everything else the old key signed (every .asc whose issuer is the old key).
 * A journal in state_path lets a re-run after a crash finish the same rotation instead of
 * starting another one (which would drop the still-needed previous key from the keyring).
 */
import { readdir, readFile, rm, unlink } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import * as openpgp from "openpgp";
import type { Config } from "../config/types.js";
import { KeyError_, UsageError } from "../errors.js";
import { withLock } from "../admin/lock.js";
import { KEY_TITLES, generateKey, keyDir, loadSigningKey } from "../pgp/keys.js";
import { LocalSigner, writeFileAtomic } from "../pgp/local-signer.js";
import type { KeyName } from "../pgp/signer.js";
import { exists } from "../tree/paths.js";
import { rebuildKeyrings, republishIfPublished } from "./rebuild.js";
import { installKeyPair, keepOldKey, publicOfPrivate, readKeyFile, writeExtraKeys } from "./key-files.js";
import { listSignatures, resignFrom, signedBy } from "./resign.js";

export const ROTATABLE = ["image-signing", "device-signing"] as const;
export type RotatableKey = (typeof ROTATABLE)[number];

export interface RotateOptions {
  bits?: number;
  discardOld?: boolean;
  /** Seconds between re-signing channels.json and the rest (step 4). Default 60. */
  graceSeconds?: number;
  lockWaitMs?: number;
  email?: string;
  now?: Date;
  log?: (line: string) => void;
}

export interface RotateResult {
  key: RotatableKey;
  oldFingerprint: string;
  newFingerprint: string;
  /** Kept private key, or null with --discard-old. */
  kept: string | null;
  keyrings: string[];
  resigned: number;
  resumed: boolean;
}

interface Journal {
  key: RotatableKey;
  old: string;
  new: string;
  kept: string;
}

const journalPath = (config: Config, key: string) => join(config.state_path, `rotate-${key}.json`);

async function readJournal(path: string): Promise<Journal | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Journal;
  } catch {
    return null;
  }
}

/** The e-mail of the current key's first user ID, so the new key looks like the old one. */
async function currentUserEmail(config: Config, key: KeyName): Promise<string | undefined> {
  const text = await readFile(join(keyDir(config.gpg_key_path, key), "public.asc"), "utf8").catch(() => "");
  if (!text) return undefined;
  const k = await openpgp.readKey({ armoredKey: text }).catch(() => null);
  return (await k?.getPrimaryUser().catch(() => null))?.user.userID?.email || undefined;
}

export async function rotateKey(config: Config, key: string, opts: RotateOptions = {}): Promise<RotateResult> {
  if (!(ROTATABLE as readonly string[]).includes(key)) {
    throw new UsageError(
      `Cannot rotate key '${key}': only ${ROTATABLE.join(" and ")} can be rotated (the masters are the devices' root of trust)`,
    );
  }
  const name = key as RotatableKey;
  const log = opts.log ?? (() => {});
  const now = opts.now ?? new Date();
  const grace = opts.graceSeconds ?? 60;
  return withLock(config.state_path, { waitMs: opts.lockWaitMs ?? 60_000, what: `rotate the ${name} key`, onWait: log }, async () => {
    const jpath = journalPath(config, name);
    const journal = await readJournal(jpath);
    const current = await loadSigningKey(config.gpg_key_path, name);
    let oldFpr = current.fingerprint.toLowerCase();
    let newFpr: string;
    let kept: string;
    const resumed = journal !== null && journal.new === oldFpr;
    if (resumed) {
      // A crash after the new private key was installed: finish that rotation.
      log(`I: resuming the unfinished rotation of ${name} (${journal.old} -> ${journal.new})`);
      oldFpr = journal.old;
      newFpr = journal.new;
      kept = journal.kept;
      await writeFileAtomic(join(keyDir(config.gpg_key_path, name), "public.asc"), await publicOfPrivate(config.gpg_key_path, name), 0o644);
    } else {
      if (journal) oldFpr = journal.old; // crashed before the install: the old key is still current
      const bits = opts.bits ?? 4096;
      log(`I: generating a new ${name} key (rsa${bits})`);
      const email = opts.email ?? (await currentUserEmail(config, name)) ?? "system-image@localhost.localdomain";
      const fresh = await generateKey({ name: `System Image ${KEY_TITLES[name]}`, email, bits });
      newFpr = fresh.fingerprint.toLowerCase();
      kept = await keepOldKey(config.gpg_key_path, name, now);
      if (name === "image-signing") {
        // The transition keyring (step 2) holds the previous key, and keeps it across rebuilds.
        await writeExtraKeys(config.gpg_key_path, name, await readKeyFile(await publicOfPrivate(config.gpg_key_path, name)));
      }
      const j: Journal = { key: name, old: oldFpr, new: newFpr, kept };
      await writeFileAtomic(jpath, JSON.stringify(j) + "\n", 0o600);
      await installKeyPair(config.gpg_key_path, name, fresh.privateArmored, fresh.publicArmored);
    }
    log(`I: ${name}: ${oldFpr.toUpperCase()} -> ${newFpr.toUpperCase()}`);

    const signer = new LocalSigner(config.gpg_key_path);
    const { built } = await rebuildKeyrings(config, { only: [name], force: true, now });
    if (built.length === 0) throw new KeyError_(`Cannot rebuild the ${name} keyring: a key it needs is missing`);
    await republishIfPublished(config, name);
    log(`I: published the ${name} keyring`);

    let resigned = 0;
    const channels = join(config.publish_path, "channels.json");
    if (exists(`${channels}.asc`) && (await signedBy(`${channels}.asc`, oldFpr))) {
      await signer.signFile(name, channels, `${channels}.asc`);
      resigned++;
      if (grace > 0) {
        log(`I: waiting ${grace} s for clients that verified the old channels.json`);
        await sleep(grace * 1000);
      }
    }
    // Keyrings this key signed (device-signing, by image-signing) first, then the tree.
    const keyringSigs = (await readdir(config.gpg_keyring_path).catch(() => [] as string[]))
      .filter((f) => f.endsWith(".tar.xz.asc") && !f.startsWith("."))
      .sort()
      .map((f) => join(config.gpg_keyring_path, f));
    resigned += (await resignFrom(signer, name, oldFpr, keyringSigs)).length;
    resigned += (await resignFrom(signer, name, oldFpr, await listSignatures(config.publish_path))).length;

    await unlink(jpath).catch(() => {});
    let keptPath: string | null = kept;
    if (opts.discardOld) {
      await rm(kept, { force: true });
      keptPath = null;
    }
    return {
      key: name,
      oldFingerprint: oldFpr,
      newFingerprint: newFpr,
      kept: keptPath,
      keyrings: built.map((b) => b.path),
      resigned,
      resumed,
    };
  });
}
