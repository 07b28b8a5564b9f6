export { ImageInspection } from "./stream.js";
export {
  ImageRefusedError,
  MAX_NAME_TOTAL,
  MEMBER_OVERHEAD,
  RATIO_GRACE_BYTES,
  TarInspector,
  shownName,
  type InspectOptions,
} from "./inspector.js";
export {
  MAX_COMPONENT_BYTES,
  MAX_LINK_BYTES,
  MAX_NAME_BYTES,
  MemberRules,
  lengthProblem,
  normaliseMemberPath,
  type RuleOptions,
} from "./rules.js";
