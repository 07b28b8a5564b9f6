/**
 * Channel-level Tree operations (server-reference §7.1) inside one transaction; the device
 * operations and the alias sync they trigger are in ops-device.ts. They call each other the
 * way the reference does (create_channel_alias syncs the alias, ...), but everything lands
 * in a single commit.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { TreeError } from "../errors.js";
import { compareCodePoints } from "../format/pyjson.js";
import * as ch from "../model/channels.js";
import { nestedChannelDirs, opCreateDevice, opSyncAlias } from "./ops-device.js";
import { assertInside, deviceDirOf, exists, isDir } from "./paths.js";
import type { Txn } from "./txn.js";

/** Directory of a device as get_device resolves it (the target's, for redirects). */
export async function deviceDir(t: Txn, channel: string, device: string): Promise<string> {
  const entry = ch.requireDevice(await t.channels(), channel, device);
  return deviceDirOf(t.ctx.root, entry.index);
}

export async function opCreateChannel(t: Txn, name: string): Promise<void> {
  ch.createChannel(await t.channels(true), name);
}

export async function opCreateChannelAlias(t: Txn, name: string, target: string): Promise<void> {
  ch.createChannelAlias(await t.channels(true), name, target);
  await opSyncAlias(t, name);
}

export async function opCreateChannelRedirect(t: Txn, name: string, target: string): Promise<void> {
  ch.createChannelRedirect(await t.channels(true), name, target);
}

/**
 * remove_channel + create_channel_alias (§7.1). The alias keeps its directory, but the old
 * copies were made for the old target: their version tarballs say `channel_target: <old>`,
 * and a device whose channel_target differs from the alias reinstalls from build 0 on every
 * check (client-protocol §7). So the copies are dropped and sync_alias rebuilds them.
 */
export async function opChangeChannelAlias(t: Txn, name: string, target: string): Promise<void> {
  const doc = await t.channels(true);
  ch.assertChangeableAlias(doc, name, target);
  for (const [d, e] of Object.entries(doc[name].devices)) {
    if (ch.isPerDeviceRedirect(e) || !Object.hasOwn(doc[target].devices, d)) continue;
    (await t.index(join(deviceDirOf(t.ctx.root, e.index), "index.json"), { write: true })).images = [];
  }
  await opRemoveChannel(t, name);
  await opCreateChannelAlias(t, name, target);
}

export async function opHideChannel(t: Txn, name: string): Promise<void> {
  ch.hideChannel(await t.channels(true), name);
}

export async function opShowChannel(t: Txn, name: string): Promise<void> {
  ch.showChannel(await t.channels(true), name);
}

export async function opRemoveChannel(t: Txn, name: string): Promise<void> {
  const doc = await t.channels(true);
  ch.requireChannel(doc, name);
  const keep = nestedChannelDirs(t, doc, name);
  const { deleteDir } = ch.removeChannel(doc, name);
  const dir = join(t.ctx.root, name);
  if (deleteDir && exists(dir)) {
    assertInside(t.ctx.root, dir, "remove channel directory");
    t.removeAfterCommit(dir, keep);
  }
}

/**
 * rename_channel (§7.1): the new directory is a hard-link copy of the old one, its indexes
 * are rewritten there, channels.json switches, and only then does the old directory go.
 * A device never sees a channels.json naming an index that is not there.
 */
export async function opRenameChannel(t: Txn, oldName: string, newName: string): Promise<void> {
  const doc = await t.channels(true);
  ch.renameChannel(structuredClone(doc), oldName, newName); // all checks, on a scratch copy
  const oldDir = join(t.ctx.root, oldName);
  const newDir = join(t.ctx.root, newName);
  const moveDir = !Object.hasOwn(doc[oldName], "redirect");
  if (moveDir && exists(newDir)) throw new TreeError(`Channel path already exists: ${newDir}`, "Exception");
  const keep = nestedChannelDirs(t, doc, oldName);
  const plan = ch.renameChannel(doc, oldName, newName);
  if (!moveDir || !exists(oldDir)) return;
  assertInside(t.ctx.root, oldDir, "move channel directory");
  assertInside(t.ctx.root, newDir, "move channel directory to");
  await t.mirror(oldDir, newDir, keep);
  const from = `/${oldName}/`;
  const to = `/${newName}/`;
  // Only paths inside the channel move (the reference replaced `/old/` anywhere in a path).
  const move = (p: string) => (p.startsWith(from) ? to + p.slice(from.length) : p);
  for (const d of plan.devices) {
    const src = join(oldDir, d, "index.json");
    if (!exists(src)) continue;
    const idx = await t.index(join(newDir, d, "index.json"), { write: true, from: src });
    for (const img of idx.images) {
      for (const f of img.files) {
        f.path = move(f.path);
        f.signature = move(f.signature);
      }
    }
  }
  t.removeAfterCommit(oldDir, keep);
}

export async function opCreatePerDeviceRedirect(t: Txn, device: string, channel: string, target: string): Promise<void> {
  ch.createPerDeviceRedirect(await t.channels(true), device, channel, target);
}

export const GENERATE_INDEX_MAGIC = "I know what I'm doing";

/**
 * generate_index (§7.1): channels.json rebuilt from the directories. Unlike the reference,
 * nested channels are found (a directory with index.json is a device, its parent path the
 * channel), and `pool` is not taken for a channel. Aliases, redirects and hidden flags are lost.
 */
export async function opGenerateIndex(t: Txn, magic: unknown): Promise<void> {
  if (magic !== GENERATE_INDEX_MAGIC) throw new TreeError("Invalid magic value, please read the help.", "Exception");
  t.resetChannels();
  const root = t.ctx.root;
  const list = async (dir: string) => (await readdir(dir)).sort(compareCodePoints).filter((e) => isDir(join(dir, e)));
  const found: Array<[string, string]> = [];
  const scan = async (dir: string, channel: string): Promise<void> => {
    for (const e of await list(dir)) {
      if (exists(join(dir, e, "index.json"))) found.push([channel, e]);
      else await scan(join(dir, e), `${channel}/${e}`);
    }
  };
  const channels = new Set<string>();
  for (const top of await list(root)) {
    if (top === "gpg" || top === "pool") continue;
    channels.add(top);
    await scan(join(root, top), top);
  }
  for (const [c] of found) channels.add(c);
  for (const c of [...channels].sort(compareCodePoints)) await opCreateChannel(t, c);
  for (const [c, d] of found) {
    const keyring = join(root, c, d, "device.tar.xz");
    await opCreateDevice(t, c, d, exists(keyring) && exists(`${keyring}.asc`) ? keyring : null);
  }
}

/**
 * Makes channels.json name the copy of each device's index.json as it is on disk
 * (versioned-index.ts): heals a commit that was killed after installing an index.json and
 * before its channels.json. Changes nothing when every entry already names its copy.
 */
export async function opRepointIndexCopies(t: Txn): Promise<void> {
  if (t.ctx.config.versioned_index === false) return;
  const channels = await t.channels();
  const dirs = new Set<string>();
  for (const c of Object.values(channels)) {
    for (const e of Object.values(c.devices)) {
      if (e.index.startsWith("/") && !e.index.startsWith("//")) dirs.add(deviceDirOf(t.ctx.root, e.index));
    }
  }
  for (const dir of dirs) if (exists(join(dir, "index.json"))) await t.index(join(dir, "index.json"), { repoint: true });
}
