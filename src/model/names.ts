/**
 * What a channel name, device name, version or base may be. The published tree turns names
 * into directories and URL paths, and devices turn them into attributes and 16-bit numbers,
 * so a bad value is refused up front with a message that says why (server-reference §13 #20,
 * client-protocol §5, §11).
 */
import { TreeError } from "../errors.js";

/** First path segments that belong to the tree itself, not to a channel (server-reference §1.1). */
const RESERVED_TOP = new Set(["gpg", "pool", "channels.json", "channels.json.asc"]);

/**
 * The client turns channels.json keys into attributes of its `Bag` class; these three would
 * shadow its methods and break parsing for every device (client-protocol §5).
 */
const BAG_METHODS = new Set(["keys", "get", "update"]);

function segmentProblem(seg: string): string | undefined {
  if (seg === "") return "it has an empty path segment (a `//` URL path or a leading/trailing `/`)";
  if (seg === "." || seg === "..") return `it has a '${seg}' segment, which would escape or alias a directory of the tree`;
  // Control characters break URLs, logs and the recovery's shell scripts alike.
  if (/[\u0000-\u001f\u007f]/.test(seg)) return "it contains a control character";
  if (seg.includes("\\")) return "it contains a backslash";
  // JSON documents are plain objects here: this key would set the prototype, not a channel.
  if (seg === "__proto__") return "'__proto__' is not a usable name";
  return undefined;
}

/**
 * A channel name: `/`-separated segments (nested directories, server-reference §0), none empty,
 * none `.` or `..`, not starting with a directory the tree reserves.
 */
export function assertChannelName(name: unknown, verb = "create channel"): asserts name is string {
  if (typeof name !== "string" || name === "") {
    throw new TreeError(`Cannot ${verb} ${JSON.stringify(name)}: a channel name must be a non-empty string`, "ValueError");
  }
  const segs = name.split("/");
  for (const seg of segs) {
    const why = segmentProblem(seg);
    if (why) throw new TreeError(`Cannot ${verb} '${name}': ${why}`, "ValueError");
  }
  if (RESERVED_TOP.has(segs[0])) {
    throw new TreeError(`Cannot ${verb} '${name}': '${segs[0]}' is a reserved name at the top of the published tree`, "ValueError");
  }
  if (BAG_METHODS.has(name)) {
    throw new TreeError(`Cannot ${verb} '${name}': the client cannot parse a channel with this name (client-protocol §5)`, "ValueError");
  }
}

/** A single path segment naming a `noun` (device, keyring): no `/`, not `.`/`..`. */
export function assertSegmentName(name: unknown, noun: string, verb: string): asserts name is string {
  if (typeof name !== "string" || name === "") {
    throw new TreeError(`Cannot ${verb} ${JSON.stringify(name)}: a ${noun} name must be a non-empty string`, "ValueError");
  }
  if (name.includes("/")) throw new TreeError(`Cannot ${verb} '${name}': a ${noun} name cannot contain '/'`, "ValueError");
  const why = segmentProblem(name);
  if (why) throw new TreeError(`Cannot ${verb} '${name}': ${why}`, "ValueError");
}

/** A device name: one path segment (it is a directory inside its channel). */
export function assertDeviceName(name: unknown, verb = "create device"): asserts name is string {
  assertSegmentName(name, "device", verb);
  if (BAG_METHODS.has(name)) {
    throw new TreeError(`Cannot ${verb} '${name}': the client cannot parse a device with this name (client-protocol §5)`, "ValueError");
  }
}

export const MAX_VERSION = 65535;

/** True for an integer the client accepts as a version or base: 1..65535 (client-protocol §5.2). */
export function isVersionNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= MAX_VERSION;
}

/** Throws ValueError unless `v` is an integer 1..65535; `what` names the field ("version", "base"). */
export function assertVersionNumber(v: unknown, what: string, context: string): asserts v is number {
  if (!isVersionNumber(v)) {
    throw new TreeError(
      `Invalid ${what}: ${JSON.stringify(v)} (${context}); it must be an integer from 1 to ${MAX_VERSION}, because devices assert 16-bit build numbers`,
      "ValueError",
    );
  }
}
