/**
 * `[global] keyring_auto_renew_days` (off by default): the scheduler calls
 * `renewExpiringKeyrings` and, when the image-signing keyring expires within that many days,
 * it is rebuilt with a fresh expiry (image_signing_expiry_days from now), re-signed by
 * image-master and published. Its keys do not change, so nothing else needs re-signing: a
 * device's cached copy stays valid until its own expiry, then it fetches the new one.
 * An expired image-signing keyring is what bricked a real fleet (issue 9).
 */
import { join } from "node:path";
import type { Config } from "../config/types.js";
import { withLock } from "../admin/lock.js";
import { buildKeyrings } from "../pgp/keyring-build.js";
import { readKeyringTarball } from "../pgp/keyring.js";
import { LocalSigner } from "../pgp/local-signer.js";
import { publishKeyringFiles } from "../tree/keyrings.js";
import { exists } from "../tree/paths.js";

export interface RenewResult {
  renewed: boolean;
  /** keyring.json expiry before (Unix seconds; undefined = none). */
  previousExpiry?: number;
  expiry?: number;
  reason: string;
}

export async function renewExpiringKeyrings(
  config: Config,
  days: number,
  opts: { now?: Date; lockWaitMs?: number } = {},
): Promise<RenewResult> {
  const now = opts.now ?? new Date();
  const file = join(config.gpg_keyring_path, "image-signing.tar.xz");
  if (!exists(file)) return { renewed: false, reason: `no image-signing keyring at ${file}` };
  const { meta } = await readKeyringTarball(file);
  const left = meta.expiry === undefined ? Infinity : meta.expiry - now.getTime() / 1000;
  if (left > days * 86400) {
    return { renewed: false, previousExpiry: meta.expiry, expiry: meta.expiry, reason: `expires in more than ${days} days` };
  }
  return withLock(config.state_path, { waitMs: opts.lockWaitMs ?? 60_000, what: "renew the image-signing keyring" }, async () => {
    const { built } = await buildKeyrings({
      keyPath: config.gpg_key_path,
      keyringPath: config.gpg_keyring_path,
      signer: new LocalSigner(config.gpg_key_path),
      imageSigningDays: config.image_signing_expiry_days,
      deviceSigningDays: config.device_signing_expiry_days,
      force: true,
      only: ["image-signing"],
      xzLevel: config.xz_level,
      now,
    });
    await publishKeyringFiles(config.publish_path, config.gpg_keyring_path, "image-signing");
    return { renewed: true, previousExpiry: meta.expiry, expiry: built[0]?.expiry, reason: "expiring soon" };
  });
}
