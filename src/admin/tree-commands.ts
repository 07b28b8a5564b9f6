/**
 * The scriptable tree subcommands (`si channel|device|keyring|image ...`): the Tree API of
 * server-reference §7 one operation per call, each under the global lock (so it never races
 * an import), each reporting what it changed in one line plus data for `--json`. Reads take
 * no lock. Errors are the tree's one-line messages, which name the channel, device or version.
 */
import { join } from "node:path";
import { SiError } from "../errors.js";
import { aliasTarget, type ChannelsDoc } from "../model/channels.js";
import { PHASED, type Image } from "../model/index-doc.js";
import { Runner } from "../tree/context.js";
import { opCreateImage, opRemoveImage, opSetDescription } from "../tree/image-ops.js";
import { opSyncAliases } from "../tree/ops-device.js";
import type { Txn } from "../tree/txn.js";
import { lockOptions, resolve, type AdminContext, type Resolved } from "./context.js";
import { triggerMirrors } from "./finish.js";
import { withLock } from "./lock.js";

export interface CommandResult<T = unknown> {
  /** What changed, one line each (`I: created channel test`). */
  lines: string[];
  data: T;
}

/** Lock → change → mirrors. */
async function mutate<T>(actx: AdminContext, what: string, fn: (r: Resolved) => Promise<CommandResult<T>>): Promise<CommandResult<T>> {
  const r = resolve(actx);
  const out = await withLock(r.config.state_path, lockOptions(r, what), () => fn(r));
  await triggerMirrors(r.config, { log: r.log, runMirror: r.runMirror });
  return out;
}

const done = <T>(line: string, data: T): CommandResult<T> => ({ lines: [`I: ${line}`], data });

// ---- channels ---------------------------------------------------------------------------

export const createChannel = (a: AdminContext, name: string) =>
  mutate(
    a,
    `create channel ${name}`,
    async ({ tree }) => (await tree.createChannel(name), done(`created channel ${name}`, { channel: name })),
  );

export const removeChannel = (a: AdminContext, name: string) =>
  mutate(
    a,
    `remove channel ${name}`,
    async ({ tree }) => (await tree.removeChannel(name), done(`removed channel ${name}`, { channel: name })),
  );

export const hideChannel = (a: AdminContext, name: string) =>
  mutate(
    a,
    `hide channel ${name}`,
    async ({ tree }) => (await tree.hideChannel(name), done(`channel ${name} is hidden`, { channel: name, hidden: true })),
  );

export const showChannel = (a: AdminContext, name: string) =>
  mutate(
    a,
    `show channel ${name}`,
    async ({ tree }) => (await tree.showChannel(name), done(`channel ${name} is shown`, { channel: name, hidden: false })),
  );

/** Aliases of the old name keep following it (§7.1): said, so the operator can re-target them. */
export const renameChannel = (a: AdminContext, from: string, to: string) =>
  mutate(a, `rename channel ${from}`, async ({ tree }) => {
    await tree.renameChannel(from, to);
    const doc = await tree.listChannels();
    const stale = Object.keys(doc).filter((c) => aliasTarget(doc, c) === from);
    const res = done(`renamed channel ${from} to ${to}`, { from, to, stale_aliases: stale });
    for (const c of stale) res.lines.push(`W: alias ${c} still follows ${from}; re-target it with: si channel alias ${c} ${to}`);
    return res;
  });

/** Creates alias `name` → `target`, or points an existing alias at `target`. */
export const aliasChannel = (a: AdminContext, name: string, target: string) =>
  mutate(a, `alias channel ${name}`, async ({ tree }) => {
    const doc = await tree.listChannels();
    if (Object.hasOwn(doc, name)) {
      const old = aliasTarget(doc, name);
      await tree.changeChannelAlias(name, target);
      return done(`alias ${name} now follows ${target} (was ${old ?? "not an alias"})`, {
        channel: name,
        alias: target,
        previous: old ?? null,
      });
    }
    await tree.createChannelAlias(name, target);
    return done(`created alias ${name} of ${target}`, { channel: name, alias: target, previous: null });
  });

export const redirectChannel = (a: AdminContext, name: string, target: string) =>
  mutate(
    a,
    `redirect channel ${name}`,
    async ({ tree }) => (
      await tree.createChannelRedirect(name, target),
      done(`created redirect ${name} to ${target}`, { channel: name, redirect: target })
    ),
  );

export async function listChannels(a: AdminContext): Promise<CommandResult<ChannelsDoc>> {
  const doc = await resolve(a).tree.listChannels();
  const lines = Object.entries(doc).map(([name, ch]) => {
    const tags: string[] = [];
    const alias = aliasTarget(doc, name);
    if (alias) tags.push(`alias of ${alias}`);
    if (typeof ch.redirect === "string") tags.push(`redirect to ${ch.redirect}`);
    if (ch.hidden) tags.push("hidden");
    const n = Object.keys(ch.devices).length;
    return `${name}${tags.length ? ` (${tags.join(", ")})` : ""}: ${n} device${n === 1 ? "" : "s"}`;
  });
  return { lines: lines.length ? lines : ["no channels"], data: doc };
}

// ---- devices ----------------------------------------------------------------------------

export const createDevice = (a: AdminContext, channel: string, device: string, keyring?: string) =>
  mutate(a, `create device ${channel}/${device}`, async ({ tree }) => {
    await tree.createDevice(channel, device, keyring ?? null);
    return done(`created device ${channel}/${device}${keyring ? ` with keyring ${keyring}` : ""}`, {
      channel,
      device,
      keyring: keyring ?? null,
    });
  });

export const removeDevice = (a: AdminContext, channel: string, device: string) =>
  mutate(
    a,
    `remove device ${channel}/${device}`,
    async ({ tree }) => (await tree.removeDevice(channel, device), done(`removed device ${channel}/${device}`, { channel, device })),
  );

export const setDeviceKeyring = (a: AdminContext, channel: string, device: string, path: string) =>
  mutate(a, `set the keyring of ${channel}/${device}`, async ({ tree }) => {
    await tree.setDeviceKeyring(channel, device, path);
    const keyring = (await tree.listChannels())[channel].devices[device].keyring!;
    return done(`keyring of ${channel}/${device} is ${keyring.path}`, { channel, device, keyring });
  });

export const redirectDevice = (a: AdminContext, channel: string, device: string, target: string) =>
  mutate(a, `redirect device ${channel}/${device}`, async ({ tree }) => {
    await tree.createPerDeviceChannelRedirect(device, channel, target);
    return done(`device ${channel}/${device} now follows ${target}/${device}`, { channel, device, redirect: target });
  });

export async function listDevices(a: AdminContext, channel: string): Promise<CommandResult> {
  const { tree } = resolve(a);
  const names = await tree.listDevices(channel);
  const devices = (await tree.listChannels())[channel].devices;
  const lines = names.map((d) => {
    const e = devices[d];
    const extra = [typeof e.redirect === "string" ? `redirect to ${e.redirect}` : "", e.keyring ? `keyring ${e.keyring.path}` : ""].filter(
      Boolean,
    );
    return `${d}: ${e.index}${extra.length ? ` (${extra.join(", ")})` : ""}`;
  });
  return { lines: lines.length ? lines : [`no devices in ${channel}`], data: devices };
}

// ---- keyrings ---------------------------------------------------------------------------

export const publishKeyring = (a: AdminContext, name: string) =>
  mutate(
    a,
    `publish keyring ${name}`,
    async ({ tree }) => (await tree.publishKeyring(name), done(`published keyring gpg/${name}.tar.xz`, { keyring: name })),
  );

// ---- images -----------------------------------------------------------------------------

const imageLabel = (version: number, base?: number | null) => (base ? `delta ${base}→${version}` : `full ${version}`);

/**
 * The device directory whose images an operation changes. Images of an alias are copies its
 * next sync replaces, and a redirect has none of its own: both are refused, naming where
 * the images really live.
 */
async function ownImagesDir(r: Resolved, channel: string, device: string): Promise<string> {
  const doc = await r.tree.listChannels();
  const dev = await r.tree.getDevice(channel, device); // unknown channel/device: the tree's message
  const ch = doc[channel];
  const entry = ch.devices[device];
  const where = `Cannot change the images of ${channel}/${device}`;
  const alias = aliasTarget(doc, channel);
  if (alias) throw new SiError(`${where}: ${channel} is an alias of ${alias} (its images are copies; change ${alias}/${device} instead)`);
  if (typeof ch.redirect === "string")
    throw new SiError(`${where}: ${channel} is a redirect to ${ch.redirect} (change ${ch.redirect}/${device} instead)`);
  if (typeof entry.redirect === "string")
    throw new SiError(`${where}: the device is a redirect to ${entry.redirect} (change ${entry.redirect}/${device} instead)`);
  return dev.path;
}

/** One commit: the index change and the alias copies that follow from it. */
function imageTxn(r: Resolved, op: string, channel: string, fn: (t: Txn) => Promise<void>): Promise<void> {
  const runner = new Runner(Runner.context(r.config, r.config.publish_path, r.treeOpts), r.treeOpts);
  return runner.txn(op, [channel], async (t) => {
    await fn(t);
    await opSyncAliases(t, channel);
  });
}

export interface ImageCreateOptions {
  base?: number;
  description?: string;
  versionDetail?: string;
  minversion?: number;
  bootme?: boolean;
}

export const createImage = (
  a: AdminContext,
  channel: string,
  device: string,
  version: number,
  files: string[],
  o: ImageCreateOptions = {},
) =>
  mutate(a, `create an image in ${channel}/${device}`, async (r) => {
    const dir = await ownImagesDir(r, channel, device);
    await imageTxn(r, "create_image", channel, (t) =>
      opCreateImage(t, join(dir, "index.json"), r.config.publish_path, {
        type: o.base ? "delta" : "full",
        version,
        description: o.description ?? o.versionDetail ?? "",
        paths: files,
        base: o.base ?? null,
        bootme: o.bootme,
        minversion: o.minversion ?? null,
        versionDetail: o.versionDetail ?? null,
      }),
    );
    const n = files.length;
    return done(`created ${channel}/${device} ${imageLabel(version, o.base)} (${n} file${n === 1 ? "" : "s"})`, {
      channel,
      device,
      version,
      base: o.base ?? null,
      files,
    });
  });

export const removeImage = (a: AdminContext, channel: string, device: string, version: number, base?: number) =>
  mutate(a, `remove an image of ${channel}/${device}`, async (r) => {
    const dir = await ownImagesDir(r, channel, device);
    await imageTxn(r, "remove_image", channel, async (t) => {
      await opRemoveImage(t, join(dir, "index.json"), base ? "delta" : "full", version, base ?? null);
    });
    return done(`removed ${channel}/${device} ${imageLabel(version, base)}`, { channel, device, version, base: base ?? null });
  });

export const describeImage = (
  a: AdminContext,
  channel: string,
  device: string,
  version: number,
  text: string,
  translations: Record<string, string>,
  base?: number,
) =>
  mutate(a, `describe an image of ${channel}/${device}`, async (r) => {
    const dir = await ownImagesDir(r, channel, device);
    await imageTxn(r, "set_description", channel, (t) =>
      opSetDescription(t, join(dir, "index.json"), {
        type: base ? "delta" : "full",
        version,
        description: text,
        translations,
        base: base ?? null,
      }),
    );
    const langs = Object.keys(translations);
    return done(`described ${channel}/${device} ${imageLabel(version, base)}${langs.length ? ` (+ ${langs.join(", ")})` : ""}`, {
      channel,
      device,
      version,
      base: base ?? null,
      description: text,
      translations,
    });
  });

export async function listImages(a: AdminContext, channel: string, device: string): Promise<CommandResult<Image[]>> {
  const images = await (await resolve(a).tree.getDevice(channel, device)).listImages();
  const lines = images.map((i) => {
    const extra = [
      i[PHASED] !== undefined ? `phased ${i[PHASED]}%` : "",
      i.bootme ? "bootme" : "",
      i.minversion ? `minversion ${i.minversion}` : "",
    ].filter(Boolean);
    const files = `${i.files.length} file${i.files.length === 1 ? "" : "s"}`;
    return `${imageLabel(i.version, i.type === "delta" ? i.base : null)}: ${files}${extra.length ? `, ${extra.join(", ")}` : ""}${i.version_detail ? ` [${i.version_detail}]` : ""}`;
  });
  return { lines: lines.length ? lines : [`no images in ${channel}/${device}`], data: images };
}
