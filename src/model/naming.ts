/**
 * File names in the published tree (server-reference §1.1, §1.2) and the URL paths that name
 * them. Basenames matter: devices download by basename (client-protocol §5.2).
 */

export const basenameOf = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/**
 * A file's prefix: its basename up to (not including) the last `-`; the whole basename when
 * it has none (`custom.tar.xz`). Used to match files between images (§1.2, §5.6).
 */
export function filePrefix(pathOrName: string): string {
  const base = basenameOf(pathOrName);
  const dash = base.lastIndexOf("-");
  return dash === -1 ? base : base.slice(0, dash);
}

/** `<name>` with every `.tar.xz` removed, as delta names use it (§1.2, §5.7). */
export const stripTarXz = (name: string) => name.split(".tar.xz").join("");

/** `pool/<T>.delta-<S>.tar.xz` basename for a delta from `source` to `target` (§1.2). */
export function deltaName(sourcePath: string, targetPath: string): string {
  return `${stripTarXz(basenameOf(targetPath))}.delta-${stripTarXz(basenameOf(sourcePath))}.tar.xz`;
}

/** `version-<N>.tar.xz` (§1.1): the number keeps basenames unique along an upgrade path. */
export const versionTarballName = (version: number | string) => `version-${version}.tar.xz`;

/** Sidecar of a `.tar.xz`: the same name ending in `.json` instead (§1.3). */
export function sidecarPath(tarPath: string): string {
  return tarPath.endsWith(".tar.xz") ? tarPath.slice(0, -".tar.xz".length) + ".json" : tarPath + ".json";
}

/** The files generators hand out all compress with xz and sign with `.asc` (§1.4). */
export const signaturePath = (path: string) => `${path}.asc`;

/**
 * Problems with a URL path devices would fetch: it must start with one `/`, and have no
 * empty, `.` or `..` segment (a `//` prefix turns into a host name in urljoin: client-protocol
 * §11 #13). Returns undefined when fine.
 */
export function urlPathProblem(url: string): string | undefined {
  if (!url.startsWith("/")) return "it does not start with '/'";
  const segs = url.slice(1).split("/");
  if (segs.some((s) => s === "")) return "it has an empty segment ('//' or a trailing '/')";
  if (segs.some((s) => s === "." || s === "..")) return "it has a '.' or '..' segment";
  return undefined;
}
