/**
 * The published tree (server-reference §7): channels.json, device directories, keyrings.
 * Every method returns a Promise and runs on one queue, in call order (see queue.ts);
 * mutations are transactions (see txn.ts) that write nothing when they fail.
 * snake_case twins (`create_channel`, ...) are the reference names for the admin shell.
 */
import { join } from "node:path";
import type { Config } from "../config/types.js";
import { TreeError } from "../errors.js";
import * as ch from "../model/channels.js";
import type { Signer } from "../pgp/signer.js";
import { readTextOrNull } from "./commit.js";
import { addSnakeAliases, Runner, type TreeOptions } from "./context.js";
import { Device } from "./device.js";
import { listMissing, listOrphaned, removeOrphans } from "./files.js";
import { publishKeyringFiles } from "./keyrings.js";
import * as ops from "./ops.js";
import * as deviceOps from "./ops-device.js";
import { deviceDirOf, expandPath, isDir, type ExpandedPath } from "./paths.js";
import type { Txn } from "./txn.js";

export class Tree {
  readonly config: Config;
  /** The tree's root (publish_path unless another path was given). */
  readonly path: string;
  /** `<path>/channels.json`. */
  readonly indexpath: string;
  private readonly runner: Runner;

  /** Throws `Invalid path: <path>` unless the root is a directory. */
  constructor(config: Config, pathOrOptions?: string | (TreeOptions & { path?: string })) {
    const opts = typeof pathOrOptions === "string" ? { path: pathOrOptions } : (pathOrOptions ?? {});
    const path = opts.path || config.publish_path;
    if (!isDir(path)) throw new TreeError(`Invalid path: ${path}`, "Exception");
    this.config = config;
    this.path = path;
    this.indexpath = join(path, "channels.json");
    this.runner = new Runner(Runner.context(config, path, opts), opts);
  }

  private async channels(): Promise<ch.ChannelsDoc> {
    return ch.parseChannels((await readTextOrNull(this.indexpath)) ?? "", this.indexpath);
  }

  private read<T>(op: string, args: unknown[], fn: (doc: ch.ChannelsDoc) => T | Promise<T>): Promise<T> {
    return this.runner.run(op, args, async () => fn(await this.channels()));
  }

  private change(op: string, args: unknown[], fn: (t: Txn) => Promise<void>): Promise<true> {
    return this.runner.txn(op, args, async (t) => {
      await fn(t);
      return true as const;
    });
  }

  /** The decoded channels.json (`{}` when missing or empty). */
  listChannels(): Promise<ch.ChannelsDoc> {
    return this.read("list_channels", [], (doc) => doc);
  }

  /** Device names of a channel. KeyError `Couldn't find channel: <c>`. */
  listDevices(channel: string): Promise<string[]> {
    return this.read("list_devices", [channel], (doc) => Object.keys(ch.requireChannel(doc, channel).devices));
  }

  /** Adds `{"devices": {}}`; no directory yet. Names may contain `/` (nested directories). */
  createChannel(name: string): Promise<true> {
    return this.change("create_channel", [name], (t) => ops.opCreateChannel(t, name));
  }

  /** A new channel that mirrors `target` (its own copies, channel_target in channel.ini). */
  createChannelAlias(name: string, target: string): Promise<true> {
    return this.change("create_channel_alias", [name, target], (t) => ops.opCreateChannelAlias(t, name, target));
  }

  /** A hidden copy of `target`'s entry with `redirect`; devices follow the target's indexes. */
  createChannelRedirect(name: string, target: string): Promise<true> {
    return this.change("create_channel_redirect", [name, target], (t) => ops.opCreateChannelRedirect(t, name, target));
  }

  /** Points an alias at another channel and rebuilds its copies. */
  changeChannelAlias(name: string, target: string): Promise<true> {
    return this.change("change_channel_alias", [name, target], (t) => ops.opChangeChannelAlias(t, name, target));
  }

  /** Sets `"hidden": true`. */
  hideChannel(name: string): Promise<true> {
    return this.change("hide_channel", [name], (t) => ops.opHideChannel(t, name));
  }

  /** Removes the `hidden` key. */
  showChannel(name: string): Promise<true> {
    return this.change("show_channel", [name], (t) => ops.opShowChannel(t, name));
  }

  /** Removes a channel (and its directory, unless alias or redirect) and redirects to it. */
  removeChannel(name: string): Promise<true> {
    return this.change("remove_channel", [name], (t) => ops.opRemoveChannel(t, name));
  }

  /** Renames a channel, moving its directory and rewriting its indexes' paths. */
  renameChannel(oldName: string, newName: string): Promise<true> {
    return this.change("rename_channel", [oldName, newName], (t) => ops.opRenameChannel(t, oldName, newName));
  }

  /** sync_alias for every alias of `channel` (not those that are also redirects). */
  syncAliases(channel: string): Promise<true> {
    return this.change("sync_aliases", [channel], (t) => deviceOps.opSyncAliases(t, channel));
  }

  /** Makes alias `alias` a copy of its target. TypeError `Not a channel alias: <a>`. */
  syncAlias(alias: string): Promise<true> {
    return this.change("sync_alias", [alias], (t) => deviceOps.opSyncAlias(t, alias));
  }

  /** Rebuilds every channel redirect to `channel`. */
  syncRedirects(channel: string): Promise<true> {
    return this.change("sync_redirects", [channel], (t) => deviceOps.opSyncRedirects(t, channel));
  }

  /** Removes per-device redirects to `channel` (only `device`'s, when given). */
  cleanupDeviceRedirects(channel: string, device?: string): Promise<true> {
    return this.change("cleanup_device_redirects", [channel, device], (t) => deviceOps.opCleanupDeviceRedirects(t, channel, device));
  }

  /** Emergency rebuild of channels.json from the directories; magic `I know what I'm doing`. */
  generateIndex(magic?: string): Promise<true> {
    return this.change("generate_index", [magic], (t) => ops.opGenerateIndex(t, magic));
  }

  /**
   * Copies `<gpg_keyring_path>/<name>.tar.xz` and its `.asc` into `<tree>/gpg/`, each
   * through a temporary sibling and rename.
   */
  publishKeyring(name: string): Promise<true> {
    return this.runner.run("publish_keyring", [name], async () => {
      await publishKeyringFiles(this.path, this.config.gpg_keyring_path, name);
      return true as const;
    });
  }

  /** Adds a device: its directory, an empty signed index.json, then alias/redirect syncs. */
  createDevice(channel: string, device: string, keyringPath?: string | null): Promise<true> {
    return this.change("create_device", [channel, device, keyringPath], (t) => deviceOps.opCreateDevice(t, channel, device, keyringPath));
  }

  /** `channel`'s `device` follows `target`'s index (no files of its own). */
  createPerDeviceChannelRedirect(device: string, channel: string, target: string): Promise<true> {
    return this.change("create_per_device_channel_redirect", [device, channel, target], (t) =>
      ops.opCreatePerDeviceRedirect(t, device, channel, target),
    );
  }

  /** Removes a device and its directory (not for per-device redirects), then syncs. */
  removeDevice(channel: string, device: string): Promise<true> {
    return this.change("remove_device", [channel, device], (t) => deviceOps.opRemoveDevice(t, channel, device));
  }

  /** The Device for `channel`/`device` (a redirect's target directory). */
  getDevice(channel: string, device: string): Promise<Device> {
    return this.read("get_device", [channel, device], (doc) => {
      const entry = ch.requireDevice(doc, channel, device);
      const { signer, clock, codec } = this.runner.ctx;
      return new Device(this.config, deviceDirOf(this.path, entry.index), {
        ...this.runner.opts,
        signer,
        clock,
        codec,
        queue: this.runner.queue,
      });
    });
  }

  /** Sets a device's keyring (`path` relative to the tree or absolute inside it; null unsets). */
  setDeviceKeyring(channel: string, device: string, path: string | null): Promise<true> {
    return this.change("set_device_keyring", [channel, device, path], (t) => deviceOps.opSetDeviceKeyring(t, channel, device, path));
  }

  /** Referenced files that do not exist, sorted. */
  listMissingFiles(): Promise<string[]> {
    return this.read("list_missing_files", [], (doc) => listMissing(this.path, doc));
  }

  /** Files and empty directories nothing references (sidecars of referenced files excepted). */
  listOrphanedFiles(): Promise<string[]> {
    return this.read("list_orphaned_files", [], (doc) => listOrphaned(this.path, doc));
  }

  /** Deletes the orphans, after making channels.json name each index's current copy. */
  async cleanupTree(): Promise<true> {
    await this.change("repoint_index_copies", [], (t) => ops.opRepointIndexCopies(t));
    return this.read("cleanup_tree", [], async (doc) => {
      await removeOrphans(await listOrphaned(this.path, doc));
      return true as const;
    });
  }

  /** expand_path relative to this tree (§7.5). */
  expandPath(path: string): ExpandedPath {
    return expandPath(path, this.path);
  }

  // The reference (snake_case) names, same functions: put on the prototype by addSnakeAliases
  // below (so they are declared here, not defined).
  /** @see Tree.listChannels */ declare list_channels: Tree["listChannels"];
  /** @see Tree.listDevices */ declare list_devices: Tree["listDevices"];
  /** @see Tree.createChannel */ declare create_channel: Tree["createChannel"];
  /** @see Tree.createChannelAlias */ declare create_channel_alias: Tree["createChannelAlias"];
  /** @see Tree.createChannelRedirect */ declare create_channel_redirect: Tree["createChannelRedirect"];
  /** @see Tree.changeChannelAlias */ declare change_channel_alias: Tree["changeChannelAlias"];
  /** @see Tree.hideChannel */ declare hide_channel: Tree["hideChannel"];
  /** @see Tree.showChannel */ declare show_channel: Tree["showChannel"];
  /** @see Tree.removeChannel */ declare remove_channel: Tree["removeChannel"];
  /** @see Tree.renameChannel */ declare rename_channel: Tree["renameChannel"];
  /** @see Tree.syncAliases */ declare sync_aliases: Tree["syncAliases"];
  /** @see Tree.syncAlias */ declare sync_alias: Tree["syncAlias"];
  /** @see Tree.syncRedirects */ declare sync_redirects: Tree["syncRedirects"];
  /** @see Tree.cleanupDeviceRedirects */ declare cleanup_device_redirects: Tree["cleanupDeviceRedirects"];
  /** @see Tree.generateIndex */ declare generate_index: Tree["generateIndex"];
  /** @see Tree.publishKeyring */ declare publish_keyring: Tree["publishKeyring"];
  /** @see Tree.createDevice */ declare create_device: Tree["createDevice"];
  /** @see Tree.createPerDeviceChannelRedirect */ declare create_per_device_channel_redirect: Tree["createPerDeviceChannelRedirect"];
  /** @see Tree.removeDevice */ declare remove_device: Tree["removeDevice"];
  /** @see Tree.getDevice */ declare get_device: Tree["getDevice"];
  /** @see Tree.setDeviceKeyring */ declare set_device_keyring: Tree["setDeviceKeyring"];
  /** @see Tree.listMissingFiles */ declare list_missing_files: Tree["listMissingFiles"];
  /** @see Tree.listOrphanedFiles */ declare list_orphaned_files: Tree["listOrphanedFiles"];
  /** @see Tree.cleanupTree */ declare cleanup_tree: Tree["cleanupTree"];
  /** @see Tree.expandPath */ declare expand_path: Tree["expandPath"];
}

export const TREE_METHODS = [
  "listChannels",
  "listDevices",
  "createChannel",
  "createChannelAlias",
  "createChannelRedirect",
  "changeChannelAlias",
  "hideChannel",
  "showChannel",
  "removeChannel",
  "renameChannel",
  "syncAliases",
  "syncAlias",
  "syncRedirects",
  "cleanupDeviceRedirects",
  "generateIndex",
  "publishKeyring",
  "createDevice",
  "createPerDeviceChannelRedirect",
  "removeDevice",
  "getDevice",
  "setDeviceKeyring",
  "listMissingFiles",
  "listOrphanedFiles",
  "cleanupTree",
  "expandPath",
] as const;

addSnakeAliases(Tree.prototype, TREE_METHODS);

/** A Tree over `config.publish_path`, signing with `signer` (default: the instance's keys). */
export function openTree(config: Config, signer?: Signer, opts: Omit<TreeOptions, "signer"> & { path?: string } = {}): Tree {
  return new Tree(config, { ...opts, signer });
}
