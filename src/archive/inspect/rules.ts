/**
 * What a member of an image may be (issue 13, "one validation pass"): pure rules over tar
 * headers in archive order, no IO. Devices install what we sign as root from the recovery,
 * which extracts with tar: any member that would land outside the extraction root, or write
 * through a link the archive itself planted, must never be signed.
 */
import type { TarHeader } from "../tar/types.js";

/** PATH_MAX: a longer name cannot be created on any Linux filesystem. */
export const MAX_NAME_BYTES = 4096;
/** NAME_MAX of ext4 and every filesystem a device uses. */
export const MAX_COMPONENT_BYTES = 255;
export const MAX_LINK_BYTES = 4096;

export type Normalised = { path: string; problem?: undefined } | { path?: undefined; problem: string };

/**
 * The member path without `./` and empty components (`./system//a/` → `system/a`; the root
 * `./` → ""), or why it cannot be extracted inside the root: absolute or with `..`.
 */
export function normaliseMemberPath(name: string, what = "path"): Normalised {
  if (name.startsWith("/")) return { problem: `absolute ${what}` };
  const parts = name.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) return { problem: `${what} with a '..' component` };
  return { path: parts.join("/") };
}

/** Byte-length rules on the name and link target (before any decoding of the path). */
export function lengthProblem(header: TarHeader): string | undefined {
  const bytes = Buffer.byteLength(header.name);
  if (bytes > MAX_NAME_BYTES) return `name is ${bytes} bytes (more than ${MAX_NAME_BYTES})`;
  for (const c of header.name.split("/")) {
    const n = Buffer.byteLength(c);
    if (n > MAX_COMPONENT_BYTES) return `a path component is ${n} bytes (more than ${MAX_COMPONENT_BYTES})`;
  }
  if (header.linkname !== undefined) {
    const n = Buffer.byteLength(header.linkname);
    if (n > MAX_LINK_BYTES) return `link target is ${n} bytes (more than ${MAX_LINK_BYTES})`;
  }
  return undefined;
}

export interface RuleOptions {
  /** Device nodes outside `system/dev/` (`[global] image_allow_devices`). */
  allowDevices: boolean;
  /** Whether a normalised path names an earlier member of the archive (hard-link targets). */
  isEarlierMember: (path: string) => boolean;
}

/**
 * Checks members in archive order. Keeps the paths of symlink members still in place: a
 * later member under one of them would be written through the link (`system/escape ->
 * /tmp/x` then `system/escape/f`). A later non-symlink member at the same path replaces the
 * link (tar unlinks it first), which is fine.
 */
export class MemberRules {
  private readonly symlinks = new Set<string>();

  constructor(private readonly opts: RuleOptions) {}

  /** Why `header` must be refused, or undefined; records it when it passes. */
  check(header: TarHeader): string | undefined {
    const long = lengthProblem(header);
    if (long) return long;
    const norm = normaliseMemberPath(header.name);
    if (norm.problem !== undefined) return norm.problem;
    const path = norm.path;
    const through = this.linkOnPath(path);
    if (through !== undefined) return `it is written through the symlink '${through}' (an earlier member)`;
    if (header.type === "link") {
      const target = normaliseMemberPath(header.linkname ?? "", "hard-link target");
      if (target.problem !== undefined) return `${target.problem} '${header.linkname}'`;
      const via = this.linkOnPath(target.path);
      if (via !== undefined) return `hard-link target '${header.linkname}' is reached through the symlink '${via}'`;
      if (target.path === "" || !this.opts.isEarlierMember(target.path))
        return `hard-link target '${header.linkname}' is not an earlier member of the archive`;
    }
    if (
      (header.type === "character-device" || header.type === "block-device") &&
      !this.opts.allowDevices &&
      !path.startsWith("system/dev/")
    ) {
      return `${header.type === "character-device" ? "character" : "block"} device node outside system/dev/ (image_allow_devices = false)`;
    }
    if (header.type === "symlink") this.symlinks.add(path);
    else if (this.symlinks.size > 0) this.symlinks.delete(path);
    return undefined;
  }

  /** The first proper parent of `path` that is a symlink member, if any. */
  private linkOnPath(path: string): string | undefined {
    if (this.symlinks.size === 0) return undefined;
    for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
      const parent = path.slice(0, i);
      if (this.symlinks.has(parent)) return parent;
    }
    return undefined;
  }
}
