/**
 * Paths inside the published tree: `expand_path` (server-reference §7.5) and the guards that
 * keep every write and delete inside publish_path.
 */
import { realpathSync, statSync, lstatSync } from "node:fs";
import { basename, dirname, join, posix } from "node:path";
import { TreeError } from "../errors.js";

/** Python's os.path.realpath (non-strict): symlinks resolved as far as the path exists. */
export function pyRealpath(p: string): string {
  const abs = posix.resolve(p);
  try {
    return realpathSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "ENOTDIR") throw err;
    const parent = dirname(abs);
    if (parent === abs) return abs;
    return join(pyRealpath(parent), basename(abs));
  }
}

export interface ExpandedPath {
  /** Real path on disk. */
  abspath: string;
  /** Path relative to the base, as given (not normalised). */
  relpath: string;
  /** URL path devices fetch: `/` + relpath. */
  url: string;
}

/**
 * §7.5: strip `base` (or its real path: generators return real paths, so a publish_path
 * reached through a symlink still works) when `path` starts with it as a directory prefix
 * (the reference's plain string prefix also stripped `/x/wwwfoo`: fixed), drop one leading
 * `/`, and join. `relpath` is not normalised, callers refuse `//`, `.` and `..` segments.
 */
export function expandPath(path: string, base: string): ExpandedPath {
  if (typeof path !== "string" || path === "")
    throw new TreeError(`Cannot use path ${JSON.stringify(path)}: not a file path`, "ValueError");
  let p = path;
  for (const prefix of new Set([base, safeRealpath(base)])) {
    if (p === prefix || p.startsWith(prefix + "/")) {
      p = p.slice(prefix.length);
      break;
    }
  }
  const relpath = p.startsWith("/") ? p.slice(1) : p;
  return { abspath: pyRealpath(join(base, relpath)), relpath, url: `/${relpath}` };
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** os.path.exists: follows symlinks; a dangling link does not exist. */
export function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

export function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Exists without following a final symlink (for deletes and moves). */
export function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuses to touch `p` unless it lies strictly inside `root` (lexically). Channel and device
 * names are validated on creation, but channels.json may have been edited by hand.
 */
export function assertInside(root: string, p: string, verb: string): void {
  const r = posix.resolve(root);
  const q = posix.resolve(p);
  if (!q.startsWith(r + "/")) throw new TreeError(`Cannot ${verb} ${p}: it is not inside the published tree ${root}`, "ValueError");
}

/** get_device's directory: normpath(<root> + "/" + dirname(index)) (§7.2). */
export function deviceDirOf(root: string, indexUrl: string): string {
  return posix.normalize(`${root}/${posix.dirname(indexUrl)}`);
}
