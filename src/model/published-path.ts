/**
 * The rule for every URL path that goes into an index (files[].path / .signature) or that an
 * upstream hands us to publish. Pure.
 *
 * Why: a device downloads each file by URL and stores it under its basename; the recovery
 * then reads `update <basename> <basename>.asc` lines from ubuntu_command (client-protocol
 * §8.2), so a newline or space in a basename is a second command. `si serve` refuses dot and
 * control names (a channel would 404), and the import's temp sweep deletes `pool/.tmp-*`
 * (a published `/pool/.tmp-evil/x` would vanish). Two files with one basename on an upgrade
 * path overwrite each other in the cache (client-protocol §11 #13: DuplicateDestinationError).
 */

/** A component: starts with a letter or digit, then letters, digits and `. _ + ~ -`. */
const COMPONENT = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
/**
 * A component's limit leaves room in ext4's 255 bytes for the temporaries that publish it
 * (`.<name>.asc.tmp-<pid>-<hex>`, `.<sidecar>.json.tmp-…`). The whole path: PATH_MAX.
 */
export const MAX_COMPONENT = 200;
export const MAX_PATH = 4096;

const shown = (s: string) => JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);

/** Why `path` cannot be published, or undefined: `/`-absolute, every component legal. */
export function publishedPathProblem(path: string): string | undefined {
  if (typeof path !== "string") return "it is not a string";
  if (path.length > MAX_PATH) return `it is longer than ${MAX_PATH} characters`;
  if (!path.startsWith("/")) return "it does not start with '/'";
  for (const comp of path.slice(1).split("/")) {
    if (comp === "") return "it has an empty component ('//' or a trailing '/')";
    if (comp === "." || comp === "..") return `it has a ${shown(comp)} component`;
    if (comp.length > MAX_COMPONENT) return `the component ${shown(comp)} is longer than ${MAX_COMPONENT} characters`;
    if (!COMPONENT.test(comp)) {
      const why = comp.startsWith(".")
        ? "starts with a dot"
        : /[\x00-\x1f\x7f]/.test(comp)
          ? "has a control character"
          : /\s/.test(comp)
            ? "has whitespace"
            : "has a character outside [A-Za-z0-9._+~-] (or does not start with a letter or digit)";
      return `the component ${shown(comp)} ${why}`;
    }
  }
  return undefined;
}

/** Basename of a URL path. */
const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/**
 * The first two different paths of `paths` that share a basename (one upgrade path: a full
 * image's files and the delta files of the same index entry), or undefined.
 */
export function basenameClash(paths: readonly string[]): [string, string] | undefined {
  const seen = new Map<string, string>();
  for (const p of paths) {
    const prev = seen.get(base(p));
    if (prev !== undefined && prev !== p) return [prev, p];
    seen.set(base(p), p);
  }
  return undefined;
}

/** A one-line description of a bad path: `"/pool/a b.tar.xz": the component "a b.tar.xz" has whitespace`. */
export function describePathProblem(path: string, problem: string): string {
  return `${shown(path)}: ${problem}`;
}
