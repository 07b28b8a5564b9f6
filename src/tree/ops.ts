/**
 * Channel- and device-level Tree operations (server-reference §7.1, §7.2) inside one
 * transaction. They call each other the way the reference does (create_device runs
 * sync_aliases and sync_redirects, ...), but everything lands in a single commit.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { TreeError } from "../errors.js";
import { compareCodePoints } from "../format/pyjson.js";
import * as ch from "../model/channels.js";
import { urlPathProblem } from "../model/naming.js";
import { opSyncAlias } from "./ops-alias.js";
import { assertInside, deviceDirOf, exists, expandPath, isDir } from "./paths.js";
import type { Txn } from "./txn.js";

/** Directory of a device as get_device resolves it (the target's, for redirects). */
export async function deviceDir(t: Txn, channel: string, device: string): Promise<string> {
  const entry = ch.requireDevice(await t.channels(), channel, device);
  return deviceDirOf(t.ctx.root, entry.index);
}

/** Sub-directories of `<root>/<name>` that belong to nested channels (`name/x/...`). */
function nestedChannelDirs(t: Txn, doc: ch.ChannelsDoc, name: string): Set<string> {
  const keep = new Set<string>();
  for (const other of Object.keys(doc)) {
    if (other.startsWith(name + "/")) keep.add(join(t.ctx.root, name, other.slice(name.length + 1).split("/")[0]!));
  }
  return keep;
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
  for (const [d, e] of Object.entries(doc[name]!.devices)) {
    if (ch.isPerDeviceRedirect(e) || !Object.hasOwn(doc[target]!.devices, d)) continue;
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
  const moveDir = !Object.hasOwn(doc[oldName]!, "redirect");
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

export async function opSyncAliases(t: Txn, channel: string): Promise<void> {
  const doc = await t.channels();
  ch.requireChannel(doc, channel);
  for (const a of ch.aliasesOf(doc, channel)) await opSyncAlias(t, a);
}

/** Rebuilds every redirect to `channel` as a fresh copy (§7.1). */
export async function opSyncRedirects(t: Txn, channel: string): Promise<void> {
  const doc = await t.channels();
  ch.requireChannel(doc, channel);
  const redirects = ch.redirectsOf(doc, channel);
  if (redirects.length === 0) return;
  await t.channels(true);
  for (const r of redirects) {
    ch.removeChannel(doc, r); // also drops per-device redirects to r, as the reference does
    ch.refreshRedirect(doc, r, channel);
  }
}

export async function opCleanupDeviceRedirects(t: Txn, channel: string, device?: string): Promise<void> {
  ch.cleanupDeviceRedirects(await t.channels(true), channel, device);
}

export async function opCreateDevice(t: Txn, channel: string, device: string, keyringPath?: string | null): Promise<void> {
  const doc = await t.channels(true);
  ch.createDevice(doc, channel, device);
  const dir = join(t.ctx.root, channel, device);
  assertInside(t.ctx.root, dir, "create device directory");
  await t.mkdirp(dir);
  // An existing index is kept (and validated); a missing one is created empty and signed.
  await t.index(join(dir, "index.json"), { write: true });
  if (keyringPath) await opSetDeviceKeyring(t, channel, device, keyringPath);
  await opSyncAliases(t, channel);
  await opSyncRedirects(t, channel);
}

export async function opCreatePerDeviceRedirect(t: Txn, device: string, channel: string, target: string): Promise<void> {
  ch.createPerDeviceRedirect(await t.channels(true), device, channel, target);
}

export async function opRemoveDevice(t: Txn, channel: string, device: string): Promise<void> {
  const doc = await t.channels(true);
  const entry = ch.removeDevice(doc, channel, device);
  const dir = join(t.ctx.root, channel, device);
  // A per-device redirect owns no files: the directory it names is the target's (§7.2).
  if (!ch.isPerDeviceRedirect(entry) && exists(dir)) {
    assertInside(t.ctx.root, dir, "remove device directory");
    t.removeAfterCommit(dir, nestedChannelDirs(t, doc, `${channel}/${device}`));
  }
  await opSyncAliases(t, channel);
  await opSyncRedirects(t, channel);
  await opCleanupDeviceRedirects(t, channel, device);
}

/** `path` relative to the tree or absolute inside it (§7.5); null removes the keyring. */
export async function opSetDeviceKeyring(t: Txn, channel: string, device: string, path: string | null): Promise<void> {
  const doc = await t.channels(true);
  const entry = ch.requireDevice(doc, channel, device);
  if (path === null) {
    delete entry.keyring;
    return;
  }
  const { abspath, url } = expandPath(path, t.ctx.root);
  if (!exists(abspath)) throw new TreeError(`Specified GPG keyring doesn't exists: ${abspath}`, "Exception");
  if (!exists(`${abspath}.asc`)) throw new TreeError(`The GPG keyring signature doesn't exists: ${abspath}.asc`, "Exception");
  const bad = urlPathProblem(url);
  if (bad) throw new TreeError(`Cannot use ${abspath} as the keyring of ${channel}/${device}: its URL path ${url} is unusable, ${bad}`, "ValueError");
  ch.setDeviceKeyring(doc, channel, device, url);
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
