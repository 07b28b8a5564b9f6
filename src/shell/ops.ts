/**
 * The operations the shell offers, one line each, for `.ops` and `.help`. The names are the
 * reference's (server-reference §7; camelCase twins work too). A test checks that every
 * Tree and Device method is listed, so this table cannot silently fall behind the API.
 */
export interface OpHelp {
  call: string;
  help: string;
}

export const TREE_OPS: readonly OpHelp[] = [
  { call: "list_channels()", help: "the decoded channels.json" },
  { call: "list_devices(channel)", help: "the device names of a channel" },
  { call: "create_channel(name)", help: "add a channel (names may contain '/')" },
  { call: "create_channel_alias(name, target)", help: "a channel that mirrors TARGET, with its own version tarballs" },
  { call: "change_channel_alias(name, target)", help: "point an alias at another channel and rebuild its copies" },
  { call: "create_channel_redirect(name, target)", help: "a hidden channel whose devices follow TARGET's indexes" },
  { call: "hide_channel(name)", help: "leave a channel out of device channel lists" },
  { call: "show_channel(name)", help: "list a hidden channel again" },
  { call: "remove_channel(name)", help: "remove a channel (and its directory, unless alias or redirect)" },
  { call: "rename_channel(old, new)", help: "rename a channel, moving its directory and rewriting its indexes" },
  { call: "sync_aliases(channel)", help: "rebuild every alias of CHANNEL" },
  { call: "sync_alias(alias)", help: "rebuild one alias from its target" },
  { call: "sync_redirects(channel)", help: "refresh every redirect to CHANNEL" },
  { call: "cleanup_device_redirects(channel, device?)", help: "remove per-device redirects to CHANNEL" },
  { call: "generate_index(magic)", help: 'rebuild channels.json from the directories (magic: "I know what I\'m doing")' },
  { call: "publish_keyring(name)", help: "copy gpg_keyring_path/NAME.tar.xz (+ .asc) into gpg/" },
  { call: "create_device(channel, device, keyring_path?)", help: "add a device: directory and empty signed index.json" },
  { call: "create_per_device_channel_redirect(device, channel, target)", help: "CHANNEL's DEVICE follows TARGET's index" },
  { call: "remove_device(channel, device)", help: "remove a device and its directory" },
  { call: "get_device(channel, device)", help: "the Device (its image operations are listed below)" },
  { call: "set_device_keyring(channel, device, path)", help: "set (or with null, unset) a device keyring in the tree" },
  { call: "list_missing_files()", help: "files the documents name that do not exist" },
  { call: "list_orphaned_files()", help: "files and empty directories nothing names" },
  { call: "cleanup_tree()", help: "delete the orphaned files" },
  { call: "expand_path(path)", help: "{abspath, relpath, url} of a path in the tree" },
];

export const DEVICE_OPS: readonly OpHelp[] = [
  { call: "list_images()", help: "the images, oldest version first" },
  {
    call: "create_image(type, version, description, paths, base?, bootme?, minversion?, version_detail?)",
    help: "add an image of files in the tree (each with its .asc)",
  },
  { call: "create_images([{type, version, description, paths, base?, ...}])", help: "several images in one commit" },
  { call: "get_image(type, version, base?)", help: "one image" },
  { call: "remove_image(type, version, base?)", help: "remove one image" },
  { call: "set_description(type, version, description, translations?, base?)", help: "set description (and description_<lang>)" },
  { call: "expire_images(max_images)", help: "keep the newest MAX full images and the deltas between them" },
  { call: "get_phased_percentage(version)", help: "the phased percentage of a version (100 = everyone)" },
  { call: "set_phased_percentage(version, percentage)", help: "phase the latest version (100 removes it)" },
];

export const ADMIN_OPS: readonly OpHelp[] = [
  { call: "copy_image(source, destination, device, {version?, offset?, keepVersion?, phased?, tag?, push?})", help: "si copy-image" },
  { call: "tag_image(channel, device, version, tag)", help: "si tag-image: N+1 with a new tag" },
  { call: "set_phased_percentage(channel, device, version, percentage)", help: "si set-phased-percentage (alias copies follow)" },
  { call: "cleanup_tree()", help: "si cleanup-tree: expire, re-sync aliases, delete orphans" },
  { call: "re_sign_indexes({all?})", help: "si re-sign-indexes, after rotating the image-signing key" },
];

function table(prefix: string, ops: readonly OpHelp[]): string[] {
  const width = Math.min(60, Math.max(...ops.map((o) => prefix.length + o.call.length)));
  return ops.map((o) => {
    const call = prefix + o.call;
    return call.length > width ? `  ${call}\n  ${" ".repeat(width)}  ${o.help}` : `  ${call.padEnd(width)}  ${o.help}`;
  });
}

/** The text of `.ops`. */
export function opsHelp(): string {
  return [
    "Tree operations (pub.*; every call returns a promise, which the shell awaits and prints):",
    ...table("pub.", TREE_OPS),
    "",
    'Device operations (const d = await pub.get_device("devel", "mako"); d.*):',
    ...table("d.", DEVICE_OPS),
    "",
    "Admin commands (admin.*; they take the global lock themselves):",
    ...table("admin.", ADMIN_OPS),
    "",
    "conf is the configuration (conf.publish_path, conf.channels, ...). camelCase names work too.",
  ].join("\n");
}
