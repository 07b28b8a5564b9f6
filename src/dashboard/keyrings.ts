/**
 * The keyrings devices download (client-protocol §4.2): the published `gpg/*.tar.xz` and the
 * device keyrings channels.json names, each with its keyring.json expiry. Devices refuse an
 * expired keyring, so the dashboard warns ahead of time and /metrics exports the dates.
 * Tarballs are re-read only when their size or mtime changes (every scrape asks).
 */
import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { Config } from "../config/types.js";
import { errorMessage } from "../errors.js";
import { readKeyringTarball } from "../pgp/keyring.js";
import type { Fleet } from "./fleet.js";

export interface KeyringInfo {
  /** Path in the published tree, e.g. `gpg/image-signing.tar.xz`. */
  path: string;
  /** keyring.json `type`. */
  type?: string;
  /** Unix seconds; absent = never expires. */
  expiry?: number;
  /** Devices using it, for device keyrings (`channel/device`). */
  usedBy: string[];
  error?: string;
}

/** Days under which the dashboard warns about an expiry. */
export const EXPIRY_WARN_DAYS = 30;

/** Whole days from `now` until `expiry` (negative once expired). */
export function daysLeft(expiry: number, now: Date): number {
  return Math.floor((expiry * 1000 - now.getTime()) / 86_400_000);
}

type Cached = { key: string; info: Omit<KeyringInfo, "usedBy" | "path"> };

export class KeyringCatalog {
  private readonly cache = new Map<string, Cached>();

  constructor(private readonly config: Config) {}

  private async read(abs: string): Promise<Omit<KeyringInfo, "usedBy" | "path">> {
    let key: string;
    try {
      const st = await stat(abs);
      key = `${st.size} ${st.mtimeMs}`;
    } catch (err) {
      return { error: `missing: ${errorMessage(err)}` };
    }
    const hit = this.cache.get(abs);
    if (hit?.key === key) return hit.info;
    let info: Cached["info"];
    try {
      const k = await readKeyringTarball(abs);
      info = { type: k.meta.type, expiry: k.meta.expiry };
    } catch (err) {
      info = { error: errorMessage(err) };
    }
    this.cache.set(abs, { key, info });
    return info;
  }

  /** The tree's gpg/ keyrings, then every device keyring, each once. */
  async list(fleet: Fleet): Promise<KeyringInfo[]> {
    const root = this.config.publish_path;
    const rel = (abs: string) => relative(root, abs).split(sep).join("/");
    const order: string[] = [];
    const users = new Map<string, string[]>();
    const add = (abs: string, user?: string) => {
      if (!users.has(abs)) {
        users.set(abs, []);
        order.push(abs);
      }
      if (user) users.get(abs)!.push(user);
    };
    const gpg = await readdir(join(root, "gpg")).catch(() => [] as string[]);
    for (const f of gpg.filter((n) => n.endsWith(".tar.xz")).sort()) add(join(root, "gpg", f));
    for (const ch of fleet.channels) {
      for (const d of ch.devices) {
        // Keyring paths in channels.json are URL paths from the tree's root.
        if (!d.keyring) continue;
        const abs = join(root, ...d.keyring.split("/").filter(Boolean));
        // Only files inside the tree: a hand-edited "../" path is not ours to open.
        if (!rel(abs).startsWith("../")) add(abs, `${ch.name}/${d.name}`);
      }
    }
    const out: KeyringInfo[] = [];
    for (const abs of order) out.push({ path: rel(abs), usedBy: users.get(abs)!, ...(await this.read(abs)) });
    return out;
  }
}
