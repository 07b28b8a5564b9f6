/**
 * The published tree API (server-reference §7) for the CLI, the admin shell, the importer and
 * the generators.
 */
export { Tree, openTree, TREE_METHODS } from "./tree.js";
export { Device, DEVICE_METHODS, type CreateImageOptions, type ImageSpec } from "./device.js";
export type { KnownDigests } from "./image-ops.js";
export type { OperationEvent, TreeOptions } from "./context.js";
export { OpQueue } from "./queue.js";
export { GENERATE_INDEX_MAGIC } from "./ops.js";
export { expandPath, pyRealpath, type ExpandedPath } from "./paths.js";
export { hashFile } from "./image-ops.js";
export { writeSignedFile } from "./commit.js";
export {
  readVersionIni,
  writeVersionSidecar,
  writeVersionTar,
  writeVersionTarball,
  writeVersionTarFile,
  type VersionConfig,
  type VersionTarballSpec,
  type WriteOptions,
  type WrittenFile,
} from "./version-tarball.js";
export type { ChannelEntry, ChannelsDoc, DeviceEntry, Keyring } from "../model/channels.js";
export type { FileEntry, Image, IndexDoc } from "../model/index-doc.js";
