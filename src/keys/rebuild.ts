/**
 * Keyring rebuilds from the instance's own settings (keys, paths, expiry periods, xz level),
 * shared by rotate-key, blacklist-key, the automatic renewal and the demo's first run.
 */
import { join } from "node:path";
import type { Config } from "../config/types.js";
import { buildKeyrings, type KeyringBuilt } from "../pgp/keyring-build.js";
import { LocalSigner } from "../pgp/local-signer.js";
import type { KeyName } from "../pgp/signer.js";
import { publishKeyringFiles } from "../tree/keyrings.js";
import { exists } from "../tree/paths.js";

export function rebuildKeyrings(
  config: Config,
  opts: { only: KeyName[]; force?: boolean; now?: Date },
): Promise<{ built: KeyringBuilt[]; skipped: string[] }> {
  return buildKeyrings({
    keyPath: config.gpg_key_path,
    keyringPath: config.gpg_keyring_path,
    signer: new LocalSigner(config.gpg_key_path),
    imageSigningDays: config.image_signing_expiry_days,
    deviceSigningDays: config.device_signing_expiry_days,
    xzLevel: config.xz_level,
    ...opts,
  });
}

/** Refreshes `gpg/<name>` in the tree; an instance that never published that keyring is left as it is. */
export async function republishIfPublished(config: Config, name: KeyName): Promise<boolean> {
  if (!exists(join(config.publish_path, "gpg", `${name}.tar.xz`))) return false;
  await publishKeyringFiles(config.publish_path, config.gpg_keyring_path, name);
  return true;
}
