export { Catalogue, type CatalogueEntry } from "./catalogue.js";
export { compareCatalogues, entryChanged, unsafeRemoval, type ChangeSet } from "./compare.js";
export { planMemberOrder, removedContent } from "./plan.js";
export { openImageTar, scanImage } from "./scan.js";
export {
  buildDelta,
  DELTA_BLOCK,
  deltaFileName,
  deltaTarSize,
  diffImages,
  makeDelta,
  type BuildOptions,
  type BuiltDelta,
  type DeltaSource,
  removedHeader,
  removedMember,
  writeDeltaTar,
  writeMembers,
  type DeltaOptions,
  type DeltaSummary,
  type ImageDiff,
} from "./delta.js";
