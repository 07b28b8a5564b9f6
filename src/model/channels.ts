/**
 * channels.json as data (server-reference §2.2) and the pure operations of the Tree API on it
 * (§7.1, §7.2). Every operation validates everything first and only then changes the document
 * it was given (the tree layer hands it a working copy and commits it whole, or not at all).
 */
import { TreeError } from "../errors.js";
import type { JsonValue } from "../format/pyjson.js";
import { assertChannelName, assertDeviceName } from "./names.js";

export type Keyring = { path: string; signature: string };
export type DeviceEntry = { index: string; keyring?: Keyring; redirect?: string; [key: string]: JsonValue | undefined };
export type ChannelEntry = {
  devices: Record<string, DeviceEntry>;
  alias?: string;
  redirect?: string;
  hidden?: boolean;
  [key: string]: JsonValue | undefined;
};
export type ChannelsDoc = Record<string, ChannelEntry>;

const has = (o: object, k: string) => Object.hasOwn(o, k);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Decodes channels.json text. Missing or empty = `{}` (§2.1). Anything the operations below
 * could trip over is refused here with the file named, so a hand-edited file fails on load.
 */
export function parseChannels(text: string, file: string): ChannelsDoc {
  if (text === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TreeError(`Cannot read ${file}: invalid JSON (${(err as Error).message})`, "ValueError");
  }
  if (!isObject(value)) throw new TreeError(`Invalid channels.json, not a dict. (${file})`, "TypeError");
  for (const [name, ch] of Object.entries(value)) {
    // The client fails on a channel without `devices`, for every device (client-protocol §5.1).
    if (!isObject(ch) || !isObject(ch.devices)) {
      throw new TreeError(`Invalid channels.json: channel '${name}' has no "devices" object (${file})`, "TypeError");
    }
    for (const [dev, entry] of Object.entries(ch.devices)) {
      if (!isObject(entry) || typeof entry.index !== "string") {
        throw new TreeError(`Invalid channels.json: device '${dev}' of channel '${name}' has no "index" path (${file})`, "TypeError");
      }
    }
  }
  return value as ChannelsDoc;
}

export const indexUrl = (channel: string, device: string) => `/${channel}/${device}/index.json`;

/** URL path of the directory holding a device's index (a redirect's target directory). */
export function deviceDirUrl(entry: DeviceEntry): string {
  return entry.index.slice(0, entry.index.lastIndexOf("/")) || "/";
}

export function requireChannel(doc: ChannelsDoc, name: string): ChannelEntry {
  if (typeof name !== "string" || !has(doc, name)) throw new TreeError(`Couldn't find channel: ${name}`, "KeyError");
  return doc[name];
}

export function requireDevice(doc: ChannelsDoc, channel: string, device: string): DeviceEntry {
  const ch = requireChannel(doc, channel);
  if (typeof device !== "string" || !has(ch.devices, device)) throw new TreeError(`Couldn't find device: ${device}`, "KeyError");
  return ch.devices[device];
}

function assertAbsent(doc: ChannelsDoc, name: string): void {
  if (has(doc, name)) throw new TreeError(`Channel already exists: ${name}`, "KeyError");
}

function requireTarget(doc: ChannelsDoc, target: string): ChannelEntry {
  if (typeof target !== "string" || !has(doc, target)) throw new TreeError(`Couldn't find target channel: ${target}`, "KeyError");
  return doc[target];
}

/** An alias that names itself is a normal channel (§1.5). */
export function aliasTarget(doc: ChannelsDoc, name: string): string | undefined {
  const a = doc[name]?.alias;
  return typeof a === "string" && a !== name ? a : undefined;
}

export const isPerDeviceRedirect = (entry: DeviceEntry) => has(entry, "redirect");

/** Device directories (`channel/device`) that exist on disk: not redirects of either kind. */
function deviceDirs(doc: ChannelsDoc): string[] {
  const out: string[] = [];
  for (const [c, ch] of Object.entries(doc)) {
    if (has(ch, "redirect")) continue;
    for (const [d, e] of Object.entries(ch.devices)) if (!isPerDeviceRedirect(e)) out.push(`${c}/${d}`);
  }
  return out;
}

/**
 * Nested channel names share directories with devices: channel `a/b` lives in the directory of
 * device `b` of channel `a`. Removing either would delete the other's files, so that layout
 * is refused when it would be created.
 */
export function assertNoDirClash(doc: ChannelsDoc, channel: string, device?: string): void {
  if (device === undefined) {
    const dd = deviceDirs(doc).find((d) => channel === d || channel.startsWith(d + "/"));
    if (dd)
      throw new TreeError(
        `Cannot create channel '${channel}': its directory would be inside the directory of device '${dd}'`,
        "ValueError",
      );
    return;
  }
  const dir = `${channel}/${device}`;
  const other = Object.keys(doc).find((c) => !has(doc[c], "redirect") && (c === dir || c.startsWith(dir + "/")));
  if (other)
    throw new TreeError(
      `Cannot create device '${device}' in channel '${channel}': its directory would hold channel '${other}'`,
      "ValueError",
    );
}

export function createChannel(doc: ChannelsDoc, name: string): void {
  assertChannelName(name);
  assertAbsent(doc, name);
  assertNoDirClash(doc, name);
  doc[name] = { devices: {} };
}

/** Adds the alias entry only; the tree layer then runs sync_alias (§7.1). */
export function createChannelAlias(doc: ChannelsDoc, name: string, target: string): void {
  assertChannelName(name, "create channel alias");
  assertAbsent(doc, name);
  requireTarget(doc, target);
  assertNoDirClash(doc, name);
  doc[name] = { devices: {}, alias: target };
}

/** A hidden copy of the target's entry plus `redirect` (§1.5); no directory. */
export function createChannelRedirect(doc: ChannelsDoc, name: string, target: string): void {
  assertChannelName(name, "create channel redirect");
  assertAbsent(doc, name);
  requireTarget(doc, target);
  refreshRedirect(doc, name, target);
}

/** (Re)makes `name` a fresh copy of `target` (sync_redirects: picks up device changes). */
export function refreshRedirect(doc: ChannelsDoc, name: string, target: string): void {
  doc[name] = { ...structuredClone(requireTarget(doc, target)), redirect: target, hidden: true };
}

/** The checks of change_channel_alias, in the reference's order. */
export function assertChangeableAlias(doc: ChannelsDoc, name: string, target: string): void {
  const ch = requireChannel(doc, name);
  if (has(ch, "redirect")) throw new TreeError(`Channel is a redirect: ${name}`, "KeyError");
  if (aliasTarget(doc, name) === undefined) throw new TreeError(`Channel isn't an alias: ${name}`, "KeyError");
  requireTarget(doc, target);
}

export function hideChannel(doc: ChannelsDoc, name: string): void {
  requireChannel(doc, name).hidden = true;
}

/** Removes the key (never writes `false`, §1.5). */
export function showChannel(doc: ChannelsDoc, name: string): void {
  delete requireChannel(doc, name).hidden;
}

/**
 * Removes a channel and every per-device redirect that points at it. Returns whether its
 * directory goes too: not for aliases and redirects (§7.1 [QUIRK] #15, cleanup removes them).
 */
export function removeChannel(doc: ChannelsDoc, name: string): { deleteDir: boolean } {
  const ch = requireChannel(doc, name);
  const deleteDir = !has(ch, "alias") && !has(ch, "redirect");
  delete doc[name];
  cleanupDeviceRedirects(doc, name);
  return { deleteDir };
}

/** Deletes devices (in any channel) that redirect to `channel`, only `device` if given. */
export function cleanupDeviceRedirects(doc: ChannelsDoc, channel: string, device?: string): Array<[string, string]> {
  const removed: Array<[string, string]> = [];
  for (const [c, ch] of Object.entries(doc)) {
    for (const [d, e] of Object.entries(ch.devices)) {
      if (e.redirect === channel && (device === undefined || d === device)) {
        delete ch.devices[d];
        removed.push([c, d]);
      }
    }
  }
  return removed;
}

export function createDevice(doc: ChannelsDoc, channel: string, device: string): void {
  const ch = requireChannel(doc, channel);
  if (has(ch.devices, device)) throw new TreeError(`Device already exists: ${device}`, "KeyError");
  assertDeviceName(device);
  assertNoDirClash(doc, channel, device);
  ch.devices[device] = { index: indexUrl(channel, device) };
}

/** `channel`'s `device` follows `target`'s entry, plus `redirect` (§7.2). */
export function createPerDeviceRedirect(doc: ChannelsDoc, device: string, channel: string, target: string): void {
  const ch = requireChannel(doc, channel);
  if (has(ch.devices, device)) throw new TreeError(`Device already exists: ${device}`, "KeyError");
  const t = requireTarget(doc, target);
  if (!has(t.devices, device)) throw new TreeError(`Couldn't find device on target channel: ${target}, ${device}`, "KeyError");
  assertDeviceName(device, "create per-device redirect");
  ch.devices[device] = { ...structuredClone(t.devices[device]), redirect: target };
}

/** Removes the entry; returns it so the caller knows whether it owned a directory. */
export function removeDevice(doc: ChannelsDoc, channel: string, device: string): DeviceEntry {
  const entry = requireDevice(doc, channel, device);
  delete doc[channel].devices[device];
  return entry;
}

export function setDeviceKeyring(doc: ChannelsDoc, channel: string, device: string, urlPath: string): void {
  requireDevice(doc, channel, device).keyring = { path: urlPath, signature: `${urlPath}.asc` };
}

/** Channels that mirror `channel` through sync_alias: alias, not itself, not a redirect (LP #1455119). */
export function aliasesOf(doc: ChannelsDoc, channel: string): string[] {
  return Object.keys(doc).filter((n) => n !== channel && doc[n].alias === channel && !has(doc[n], "redirect"));
}

export function redirectsOf(doc: ChannelsDoc, channel: string): string[] {
  return Object.keys(doc).filter((n) => doc[n].redirect === channel);
}

export interface RenamePlan {
  /** The old channel owned a directory (not a channel redirect). */
  moveDir: boolean;
  /** Devices whose index moves from /old/<d>/ to /new/<d>/ and must be rewritten. */
  devices: string[];
}

/**
 * rename_channel on the document (§7.1). Per-device redirects inside the channel keep their
 * index (they have no directory: §13 #21). Per-device redirects elsewhere that pointed at
 * `old` follow it, and so do channel redirects (their device copies would otherwise name
 * index files that no longer exist). Aliases of `old` are left as the reference leaves them.
 */
export function renameChannel(doc: ChannelsDoc, oldName: string, newName: string): RenamePlan {
  const ch = requireChannel(doc, oldName);
  assertAbsent(doc, newName);
  assertChannelName(newName, "rename channel to");
  if (newName.startsWith(oldName + "/") || oldName.startsWith(newName + "/")) {
    throw new TreeError(`Cannot rename channel '${oldName}' to '${newName}': one directory would be inside the other`, "ValueError");
  }
  const others = { ...doc };
  delete others[oldName];
  assertNoDirClash(others, newName);
  const moved = structuredClone(ch);
  const plan: RenamePlan = { moveDir: !has(ch, "redirect"), devices: [] };
  delete doc[oldName];
  doc[newName] = moved;
  if (plan.moveDir) {
    for (const [d, e] of Object.entries(moved.devices)) {
      if (isPerDeviceRedirect(e)) continue;
      e.index = indexUrl(newName, d);
      plan.devices.push(d);
    }
  }
  for (const c of Object.values(doc)) {
    for (const [d, e] of Object.entries(c.devices)) {
      if (e.redirect === oldName) {
        e.redirect = newName;
        e.index = indexUrl(newName, d);
      }
    }
  }
  for (const r of redirectsOf(doc, oldName)) refreshRedirect(doc, r, newName);
  return plan;
}
