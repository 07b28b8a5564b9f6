/**
 * Device-level Tree operations (server-reference §7.2) and the alias sync they trigger: one
 * module because they recurse into each other (create_device runs sync_aliases, which
 * creates the device in every alias, whose own aliases are synced in turn).
 *
 * sync_alias (server-reference §7.1): an alias channel keeps its own copy of every device and
 * image of its target, each with its own version tarball whose channel.ini says
 * `channel: <alias>` and `channel_target: <target>` (client-protocol §7).
 *
 * Differences from the reference, both so that devices on the alias do not loop:
 * - a copy whose content no longer matches the target's image is replaced;
 * - an existing alias version tarball is reused only if it was made for this alias and
 *   target (the reference reused one made for a former target, §7.1 [QUIRK]), and when one
 *   is rebuilt, every copy naming it gets the new checksum.
 */
import { join } from "node:path";
import { TreeError } from "../errors.js";
import { compareCodePoints } from "../format/pyjson.js";
import * as ch from "../model/channels.js";
import { canonical, PHASED, type Image } from "../model/index-doc.js";
import { compareKeys, getPhasedPercentage, imageKey, insertImage, keyString, setPhasedPercentage } from "../model/images.js";
import { sidecarPath, urlPathProblem, versionTarballName } from "../model/naming.js";
import { readTextOrNull } from "./commit.js";
import { hashFile } from "./image-ops.js";
import { assertInside, deviceDirOf, exists, expandPath } from "./paths.js";
import type { Txn } from "./txn.js";
import { readVersionIni, writeVersionTarball, type VersionTarballSpec } from "./version-tarball.js";

export async function opSyncAlias(t: Txn, alias: string): Promise<void> {
  const doc = await t.channels();
  ch.requireChannel(doc, alias);
  const target = ch.aliasTarget(doc, alias);
  if (target === undefined) throw new TreeError(`Not a channel alias: ${alias}`, "TypeError");
  if (!Object.hasOwn(doc, target)) throw new TreeError(`Couldn't find target channel: ${target}`, "KeyError");
  if (t.syncing.has(alias)) return; // an alias cycle: this alias is already being synced
  t.syncing.add(alias);
  try {
    const mine = Object.keys(doc[alias].devices);
    const theirs = Object.keys(doc[target].devices).sort(compareCodePoints);
    for (const d of mine.filter((d) => !theirs.includes(d)).sort(compareCodePoints)) await opRemoveDevice(t, alias, d);
    for (const d of theirs.filter((d) => !mine.includes(d))) await opCreateDevice(t, alias, d);
    for (const d of theirs) {
      const cur = await t.channels();
      const entry = cur[alias]?.devices[d];
      const tentry = cur[target]?.devices[d];
      // A per-device redirect inside the alias names another channel's index: not ours to fill.
      if (!entry || !tentry || ch.isPerDeviceRedirect(entry)) continue;
      const dir = deviceDirOf(t.ctx.root, entry.index);
      const tdir = deviceDirOf(t.ctx.root, tentry.index);
      if (dir !== tdir) await syncDevice(t, { alias, target, device: d, dir, tdir });
    }
  } finally {
    t.syncing.delete(alias);
  }
}

/** An image minus what legitimately differs in its alias copy: the version file and phasing. */
function copyShape(img: Image): string {
  const c = structuredClone(img);
  delete c[PHASED];
  const i = c.files.findIndex((f) => f.path.endsWith(versionTarballName(img.version)));
  if (i >= 0) c.files.splice(i, 1);
  return canonical(c);
}

async function syncDevice(t: Txn, s: { alias: string; target: string; device: string; dir: string; tdir: string }): Promise<void> {
  const pub = t.ctx.config.publish_path;
  const tidx = await t.index(join(s.tdir, "index.json"));
  const aidx = await t.index(join(s.dir, "index.json"), { write: true });
  const wanted = new Map<string, Image>();
  for (const img of tidx.images) {
    const k = keyString(imageKey(img));
    if (!wanted.has(k)) wanted.set(k, img);
  }
  aidx.images = aidx.images.filter((img) => {
    const ti = wanted.get(keyString(imageKey(img)));
    return ti !== undefined && copyShape(ti) === copyShape(img);
  });
  await t.mkdirp(s.dir);
  const have = new Set(aidx.images.map((i) => keyString(imageKey(i))));
  const missing = [...wanted.values()].filter((i) => !have.has(keyString(imageKey(i))));
  missing.sort((a, b) => compareKeys(imageKey(a), imageKey(b)));
  const built = new Map<string, { sha256: string; size: number }>();
  for (const ti of missing) {
    const entry = structuredClone(ti);
    const vname = versionTarballName(entry.version);
    let versionDetail: string | null = null;
    let order = entry.files.length;
    const vi = entry.files.findIndex((f) => f.path.endsWith(vname));
    if (vi >= 0) {
      const vf = entry.files[vi];
      versionDetail = await sidecarVersionDetail(join(pub, vf.path));
      order = vf.order;
      entry.files.splice(vi, 1);
    }
    const vpath = join(s.dir, vname);
    const { url } = expandPath(vpath, pub);
    const spec = { channel: s.alias, device: s.device, version: entry.version, versionDetail, channelTarget: s.target };
    const info = await aliasVersionFile(t, vpath, spec);
    if (info.built) built.set(url, info);
    entry.files.push({ order, path: url, signature: `${url}.asc`, checksum: info.sha256, size: info.size });
    insertImage(aidx, entry);
  }
  for (const img of aidx.images) {
    for (const f of img.files) {
      const b = built.get(f.path);
      if (b) Object.assign(f, { checksum: b.sha256, size: b.size });
    }
  }
  if (tidx.images.length > 0) {
    const last = Math.max(...tidx.images.map((i) => i.version));
    setPhasedPercentage(aidx, last, getPhasedPercentage(tidx, last, s.tdir), s.dir);
  }
}

/** `channel.ini.version_detail` of a version tarball's sidecar, if it has one (§2.5). */
async function sidecarVersionDetail(tarPath: string): Promise<string | null> {
  const path = sidecarPath(tarPath);
  const text = await readTextOrNull(path);
  if (text === null) return null;
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch (err) {
    throw new TreeError(`Cannot read version_detail from ${path}: invalid JSON (${(err as Error).message})`, "ValueError");
  }
  const ini = (meta as Record<string, unknown> | null)?.["channel.ini"];
  const vd = typeof ini === "object" && ini !== null ? (ini as Record<string, unknown>).version_detail : undefined;
  return typeof vd === "string" ? vd : null;
}

/** The alias's version tarball: staged in this transaction, reused if made for it, else built. */
async function aliasVersionFile(
  t: Txn,
  vpath: string,
  spec: VersionTarballSpec,
): Promise<{ sha256: string; size: number; built: boolean }> {
  const staged = t.stagedFile(vpath);
  if (staged) return { sha256: staged.sha256, size: staged.size, built: true };
  if (exists(vpath) && exists(`${vpath}.asc`)) {
    const ini = await readVersionIni(vpath, { codec: t.ctx.codec }).catch(() => null);
    if (ini?.channel === spec.channel && ini.channel_target === spec.channelTarget) return { ...(await hashFile(vpath)), built: false };
  }
  const w = await writeVersionTarball(
    vpath,
    t.ctx.config,
    { ...spec, now: t.ctx.clock() },
    {
      signer: t.ctx.signer,
      codec: t.ctx.codec,
      install: false,
    },
  );
  t.stage({ path: vpath, tmp: w.tmp!, sigTmp: w.sigTmp!, sha256: w.sha256, size: w.size });
  return { sha256: w.sha256, size: w.size, built: true };
}

/** Sub-directories of `<root>/<name>` that belong to nested channels (`name/x/...`). */
export function nestedChannelDirs(t: Txn, doc: ch.ChannelsDoc, name: string): Set<string> {
  const keep = new Set<string>();
  for (const other of Object.keys(doc)) {
    if (other.startsWith(name + "/")) keep.add(join(t.ctx.root, name, other.slice(name.length + 1).split("/")[0]));
  }
  return keep;
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
  if (bad)
    throw new TreeError(
      `Cannot use ${abspath} as the keyring of ${channel}/${device}: its URL path ${url} is unusable, ${bad}`,
      "ValueError",
    );
  ch.setDeviceKeyring(doc, channel, device, url);
}
