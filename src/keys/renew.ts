/**
 * `[global] keyring_auto_renew_days` (off by default): after every import — the scheduler of
 * `si serve` and `si import-images` (systemd timer, cron) alike — `renewKeyringIfDue` checks
 * the image-signing keyring and, when it expires within that many days, rebuilds it with a
 * fresh expiry (image_signing_expiry_days from now), re-signed by image-master, and publishes
 * it. Its keys do not change, so nothing else needs re-signing: a device's cached copy stays
 * valid until its own expiry, then it fetches the new one (client-protocol §3 step 4).
 * An expired image-signing keyring is what bricked a real fleet (issue 9).
 */
import { join } from "node:path";
import type { Config } from "../config/types.js";
import { withLock } from "../admin/lock.js";
import { KeyError_, errorMessage } from "../errors.js";
import type { Logger } from "../io/log.js";
import { readKeyringTarball } from "../pgp/keyring.js";
import { exists } from "../tree/paths.js";
import { rebuildKeyrings, republishIfPublished } from "./rebuild.js";

export interface RenewResult {
  renewed: boolean;
  /** keyring.json expiry before (Unix seconds; undefined = none). */
  previousExpiry?: number;
  expiry?: number;
  reason: string;
}

/** The earliest expiry of the built keyring and of the published copy devices download. */
async function earliestExpiry(config: Config): Promise<number | undefined> {
  const files = [join(config.gpg_keyring_path, "image-signing.tar.xz"), join(config.publish_path, "gpg", "image-signing.tar.xz")];
  let earliest: number | undefined;
  for (const f of files.filter(exists)) {
    const { meta } = await readKeyringTarball(f);
    if (meta.expiry !== undefined && (earliest === undefined || meta.expiry < earliest)) earliest = meta.expiry;
  }
  return earliest;
}

export async function renewExpiringKeyrings(
  config: Config,
  days: number,
  opts: { now?: Date; lockWaitMs?: number } = {},
): Promise<RenewResult> {
  const now = opts.now ?? new Date();
  const file = join(config.gpg_keyring_path, "image-signing.tar.xz");
  if (!exists(file)) return { renewed: false, reason: `no image-signing keyring at ${file}` };
  const due = async () => {
    const expiry = await earliestExpiry(config);
    return { expiry, due: expiry !== undefined && expiry - now.getTime() / 1000 <= days * 86400 };
  };
  // Checked without the lock first (most runs renew nothing), then again under it: a
  // rotate-key or another renewal may have rebuilt the keyring meanwhile.
  const before = await due();
  if (!before.due)
    return { renewed: false, previousExpiry: before.expiry, expiry: before.expiry, reason: `expires in more than ${days} days` };
  return withLock(config.state_path, { waitMs: opts.lockWaitMs ?? 60_000, what: "renew the image-signing keyring" }, async () => {
    const check = await due();
    if (!check.due)
      return { renewed: false, previousExpiry: check.expiry, expiry: check.expiry, reason: `expires in more than ${days} days` };
    const { built, skipped } = await rebuildKeyrings(config, { only: ["image-signing"], force: true, now });
    if (built.length === 0) throw new KeyError_(`Cannot rebuild ${file}: ${skipped.join("; ") || "nothing was built"}`);
    await republishIfPublished(config, "image-signing");
    return { renewed: true, previousExpiry: check.expiry, expiry: built[0]?.expiry, reason: "expiring soon" };
  });
}

const iso = (seconds: number | undefined) => (seconds === undefined ? "never" : new Date(seconds * 1000).toISOString());

/**
 * The after-import duty: renews when `keyring_auto_renew_days` is set and the keyring is due,
 * logging what it did. Returns null when the option is off, false when renewal failed (the
 * error is logged; the caller decides the exit status), true otherwise.
 */
export async function renewKeyringIfDue(
  config: Config,
  log: Logger,
  opts: { now?: Date; lockWaitMs?: number } = {},
): Promise<boolean | null> {
  const days = config.keyring_auto_renew_days;
  if (!days) return null;
  const klog = log.child({ keyring: "image-signing" });
  try {
    const r = await renewExpiringKeyrings(config, days, opts);
    if (r.renewed) {
      klog.info(`renewed the image-signing keyring: expiry ${iso(r.previousExpiry)} -> ${iso(r.expiry)}`, { expiry: iso(r.expiry) });
      if (days >= config.image_signing_expiry_days) {
        klog.warn(
          `keyring_auto_renew_days (${days}) is not below image_signing_expiry_days (${config.image_signing_expiry_days}): the keyring is renewed on every run`,
        );
      }
    } else klog.debug(`image-signing keyring not renewed: ${r.reason}`);
    return true;
  } catch (err) {
    klog.error(`Cannot renew the image-signing keyring: ${errorMessage(err)}`);
    return false;
  }
}
