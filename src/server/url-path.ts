/**
 * Request target → safe path segments inside the published tree. Pure: no disk access.
 *
 * Everything that is not plainly a path below the tree root yields `undefined`, which the
 * file handler answers with 404 (never 500, and never a hint of what exists outside):
 * `..` in any encoding, backslashes, NUL and other control bytes, dotfiles and temp files
 * (names starting with `.`), and anything that still contains `%` after one decoding
 * (double encoding such as `%252e%252e`). Symlinks are checked later against the real
 * path, because no amount of URL parsing can see them.
 */

/** `http://host[:port]/path` (absolute-form request target, RFC 9112 §3.2.2). */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;

/** Raw bytes that never belong in a request path we serve. */
const RAW_FORBIDDEN = /[\x00-\x1f\x7f\\]/;

/** Decoded segment characters we refuse: separators and control bytes, `%` (double encoding). */
const DECODED_FORBIDDEN = /[\x00-\x1f\x7f/\\%]/;

/**
 * Splits a raw request target (`req.url`) into decoded path segments, or `undefined` when the
 * target must not be served. Repeated slashes collapse (`//pool/x` is `/pool/x`, because the
 * UBports installer concatenates its base URL and the file path: client-protocol §10.1).
 * A trailing slash is kept as a final empty segment so that `/pool/` is never a file.
 */
export function pathSegments(target: string): string[] | undefined {
  let path = target;
  const abs = ABSOLUTE_FORM.exec(path);
  if (abs) path = path.slice(abs[0].length) || "/";
  const cut = path.search(/[?#]/);
  if (cut >= 0) path = path.slice(0, cut);
  if (!path.startsWith("/") || RAW_FORBIDDEN.test(path)) return undefined;
  const raw = path.split("/").filter((s, i, all) => s !== "" || i === all.length - 1);
  const segments: string[] = [];
  for (const r of raw) {
    let s: string;
    try {
      s = decodeURIComponent(r);
    } catch {
      return undefined; // malformed %-escape or invalid UTF-8
    }
    if (DECODED_FORBIDDEN.test(s) || s.startsWith(".")) return undefined;
    segments.push(s);
  }
  if (segments.length === 0 || segments[segments.length - 1] === "") return undefined;
  return segments;
}

/** The path as logged and matched against channels.json: `/` + segments. */
export function canonicalPath(segments: readonly string[]): string {
  return "/" + segments.join("/");
}
