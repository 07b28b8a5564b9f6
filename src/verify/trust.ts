/**
 * The device's trust chain, rebuilt from the PUBLISHED keyrings (client-protocol §4.1):
 * archive-master (preinstalled: our secret copy is the root) → image-master → blacklist and
 * image-signing → device-signing. A keyring whose own signature fails is reported, and its
 * keys are still used below it, so one damaged file yields one problem, not a cascade; a
 * keyring that cannot be read at all leaves what it signs unchecked (null trust).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ChannelsDoc } from "../model/channels.js";
import type { PublicKeyInfo } from "../pgp/keys.js";
import { expiryProblem, inspectKeyring } from "./keyrings.js";
import type { Reporter } from "./report.js";
import { isFile, type SignatureChecker, type Trust } from "./signatures.js";
import { local } from "./tree-files.js";

export interface Chain {
  root: Trust | null;
  imageMaster: Trust | null;
  imageSigning: Trust | null;
  /** Published gpg/device-signing.tar.xz, if any (a shared device keyring). */
  deviceSigning: Trust | null;
  blacklist: ReadonlySet<string>;
  /** The .asc files this stage verified (the sweep skips them). */
  handled: Set<string>;
}

export interface KeyringCheck {
  rep: Reporter;
  sigs: SignatureChecker;
  now: Date;
  warnDays: number;
}

/**
 * Judges one keyring tarball: form, type (and model), expiry, and its signature by `signer`.
 * Returns its keys (null when unreadable). Used for gpg/ and for device keyrings.
 */
export async function checkKeyring(
  c: KeyringCheck,
  path: string,
  asc: string | null,
  type: string,
  signer: Trust | null,
  opts: { model?: string; handled?: Set<string> } = {},
): Promise<PublicKeyInfo[] | null> {
  c.rep.checked.keyrings++;
  const k = await inspectKeyring(path, type, { model: opts.model });
  if (k.fatal) c.rep.error(path, `keyring ${k.fatal}`);
  for (const d of k.defects) c.rep.error(path, `keyring ${d}`);
  const exp = k.meta ? expiryProblem(k.meta.expiry, c.now, c.warnDays) : null;
  if (exp) (exp.error ? c.rep.error.bind(c.rep) : c.rep.warning.bind(c.rep))(path, `${type} keyring ${exp.message}`);
  if (asc !== null) {
    opts.handled?.add(asc);
    if (!(await isFile(asc))) c.rep.error(asc, `missing: the signature of ${c.rep.name(path)} (devices refuse an unsigned keyring)`);
    else await c.sigs.check(path, asc, signer);
  }
  return k.fatal ? null : k.keys;
}

const trust = (label: string, keys: PublicKeyInfo[] | null, blacklist: ReadonlySet<string>): Trust | null =>
  keys ? { label, keys, blacklist } : null;

export async function loadChain(c: KeyringCheck, publish: string, keyringPath: string): Promise<Chain> {
  const handled = new Set<string>();
  const gpg = (name: string) => join(publish, "gpg", `${name}.tar.xz`);
  const none: ReadonlySet<string> = new Set();

  // The device's preinstalled archive-master: our own copy, not the published one.
  const secretRoot = join(keyringPath, "archive-master.tar.xz");
  let rootKeys: PublicKeyInfo[] | null;
  if (existsSync(secretRoot)) {
    rootKeys = await checkKeyring(c, secretRoot, null, "archive-master", null);
  } else {
    c.rep.warning(
      gpg("archive-master"),
      `the trust root ${secretRoot} is absent: trusting the published archive-master instead, which cannot vouch for itself`,
    );
    rootKeys = existsSync(gpg("archive-master")) ? (await inspectKeyring(gpg("archive-master"), "archive-master")).keys : null;
    if (!rootKeys)
      c.rep.error(gpg("archive-master"), `no trust root: neither ${secretRoot} nor a readable published archive-master exists`);
  }
  const root = trust("archive-master", rootKeys, none);

  const published = async (name: string, signer: Trust | null, required: boolean): Promise<PublicKeyInfo[] | null> => {
    const path = gpg(name);
    if (!(await isFile(path))) {
      if (required) c.rep.error(path, `missing: devices need it to trust anything ${name} signs`);
      return null;
    }
    return checkKeyring(c, path, `${path}.asc`, name, signer, { handled });
  };

  const pubRoot = await published("archive-master", root, false);
  if (!existsSync(gpg("archive-master")))
    c.rep.warning(gpg("archive-master"), "missing: the reference publishes the archive-master keyring (clients never fetch it)");
  else if (
    pubRoot &&
    rootKeys &&
    pubRoot
      .map((k) => k.fingerprint)
      .sort()
      .join() !==
      rootKeys
        .map((k) => k.fingerprint)
        .sort()
        .join()
  ) {
    c.rep.warning(gpg("archive-master"), `holds other keys than the trust root ${secretRoot}`);
  }
  // The client fetches image-master and the blacklist without subtracting any blacklist.
  const imageMaster = trust("image-master", await published("image-master", root, true), none);
  const blacklistKeys = await published("blacklist", imageMaster, false);
  const blacklist = new Set((blacklistKeys ?? []).map((k) => k.fingerprint.toLowerCase()));
  const imageMasterMinus = imageMaster && { ...imageMaster, blacklist };
  const imageSigning = trust("image-signing", await published("image-signing", imageMasterMinus, true), blacklist);
  const deviceSigning = trust("device-signing", await published("device-signing", imageSigning, false), blacklist);
  return { root, imageMaster, imageSigning, deviceSigning, blacklist, handled };
}

/**
 * Device keyrings named by channels.json (client-protocol §3 step 6): type device-signing,
 * model equal to the device when set, signed by image-signing minus the blacklist. Returns
 * the keys each channel/device may also sign its index and files with ("channel\ndevice").
 */
export async function checkDeviceKeyrings(
  c: KeyringCheck,
  root: string,
  channels: ChannelsDoc,
  chain: Chain,
): Promise<Map<string, Trust | null>> {
  const out = new Map<string, Trust | null>();
  const done = new Map<string, PublicKeyInfo[] | null>();
  for (const [ch, entry] of Object.entries(channels)) {
    for (const [dev, d] of Object.entries(entry.devices)) {
      if (!d.keyring) continue;
      const path = local(root, d.keyring.path);
      const asc = local(root, d.keyring.signature);
      if (path === null || asc === null) continue;
      const key = `${path}\n${dev}`;
      if (!done.has(key)) {
        if (!(await isFile(path))) {
          c.rep.error(path, `missing: the device keyring of ${ch}/${dev} (devices stop with FileNotFoundError)`);
          chain.handled.add(asc);
          done.set(key, null);
        } else {
          done.set(key, await checkKeyring(c, path, asc, "device-signing", chain.imageSigning, { model: dev, handled: chain.handled }));
        }
      }
      out.set(`${ch}\n${dev}`, trust(`device-signing (${c.rep.name(path)})`, done.get(key) ?? null, chain.blacklist));
    }
  }
  return out;
}
