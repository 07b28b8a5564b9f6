/**
 * Content-Type and Cache-Control of a published file, from its URL path alone (pure).
 *
 * The one source of truth for both servers of the tree (issue 14 item 6): `si serve` calls
 * cacheControlOf / contentTypeOf for every file, and `si nginx-site` (src/deploy/nginx-site.ts)
 * writes the same tables into the nginx site, so the shipped etc/nginx/system-image.conf is
 * generated from here and test/deploy checks both servers answer alike for every rule.
 */

/** Revalidate every time: these change with every publish and are cheap to 304. */
export const CACHE_MUTABLE = "no-cache";
/** Pool files are content-addressed (server-reference §1.2): a name never gets new bytes. */
export const CACHE_IMMUTABLE = "public, max-age=31536000, immutable";
/** Keyrings, version tarballs, content-named index copies, signatures: rarely change, but may. */
export const CACHE_SHORT = "public, max-age=300";

export interface CacheRule {
  /** Short name of the kind of path (logs, nginx comments, tests). */
  kind: string;
  /** Why this lifetime (written above the nginx location). */
  why: string;
  /**
   * Matched against the canonical URL path (`/` + decoded segments, slashes merged). The
   * source is also written verbatim as an nginx `location ~` regex, so it keeps to syntax
   * JavaScript and PCRE read alike: `^ $ \. [a-z] {n} (?:a|b) ? * +` (test/deploy checks).
   */
  pattern: RegExp;
  cacheControl: string;
  /** Paths of this kind (tests serve each one from both servers). */
  examples: readonly string[];
}

/**
 * First match wins, in this order, in both servers (nginx tries regex locations in the
 * order they appear). A path no rule matches gets DEFAULT_CACHE.
 *
 * channels.json, every index.json and their signatures change on each publish: a cache
 * holding a stale pair, or a new document with an old .asc, makes devices fail signature
 * checks (client-protocol §9). Every `.asc` can be replaced in place: `si rotate-key` and
 * `si re-sign-indexes` re-sign channels.json, the indexes and their content-named copies,
 * and the files of the images devices still fetch, pool files and version tarballs alike
 * (src/admin/re-sign.ts). An `immutable` signature would be served, dead, for a year after
 * a rotation plus blacklist; so no `.asc` is ever immutable, only the pool payloads.
 */
export const CACHE_RULES: readonly CacheRule[] = [
  {
    kind: "channels.json",
    why: "changes with every publish: revalidate (ETag/Last-Modified)",
    pattern: /^\/channels\.json(?:\.asc)?$/,
    cacheControl: CACHE_MUTABLE,
    examples: ["/channels.json", "/channels.json.asc"],
  },
  {
    kind: "index.json",
    why: "rewritten in place by every commit: revalidate",
    pattern: /\/index\.json(?:\.asc)?$/,
    cacheControl: CACHE_MUTABLE,
    examples: ["/16.04/devel/mako/index.json", "/16.04/devel/mako/index.json.asc"],
  },
  {
    kind: "index copy",
    why: "content-named (src/tree/versioned-index.ts); the .asc changes on re-signing",
    pattern: /\/index-[0-9a-f]{16}\.json(?:\.asc)?$/,
    cacheControl: CACHE_SHORT,
    examples: ["/16.04/devel/mako/index-0123456789abcdef.json", "/16.04/devel/mako/index-0123456789abcdef.json.asc"],
  },
  {
    kind: "signature",
    why: "si rotate-key / re-sign-indexes replace them in place: never immutable",
    pattern: /\.asc$/,
    cacheControl: CACHE_SHORT,
    examples: [
      "/pool/ubports-0123abcd.tar.xz.asc",
      "/pool/ubports-0123abcd.json.asc",
      "/16.04/devel/mako/version-3.tar.xz.asc",
      "/gpg/image-signing.tar.xz.asc",
    ],
  },
  {
    kind: "pool",
    why: "content-addressed: a name never gets new bytes",
    pattern: /^\/pool\//,
    cacheControl: CACHE_IMMUTABLE,
    examples: ["/pool/ubports-0123abcd.tar.xz", "/pool/ubports-0123abcd.json", "/pool/boot.img"],
  },
];

/** Everything else: keyrings, version tarballs and their sidecars, device keyrings. */
export const DEFAULT_CACHE: Omit<CacheRule, "pattern"> = {
  kind: "other",
  why: "keyrings, version tarballs, sidecars: rarely change, but may",
  cacheControl: CACHE_SHORT,
  examples: [
    "/gpg/image-signing.tar.xz",
    "/16.04/devel/mako/version-3.tar.xz",
    "/16.04/devel/mako/version-3.json",
    "/16.04/devel/mako/device.tar.xz",
  ],
};

/** The rule that decides a path's caching (DEFAULT_CACHE when none matches). */
export function cacheRuleOf(path: string): Omit<CacheRule, "pattern"> {
  return CACHE_RULES.find((r) => r.pattern.test(path)) ?? DEFAULT_CACHE;
}

export function cacheControlOf(path: string): string {
  return cacheRuleOf(path).cacheControl;
}

/**
 * Types by file extension; everything else (images, other tarballs) is opaque bytes. The
 * extension is what follows the last `.` of the last segment, compared in lower case: what
 * nginx's `types {}` block does, so both servers agree even on odd names.
 */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  json: "application/json",
  asc: "application/pgp-signature",
  xz: "application/x-xz",
};
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

export function contentTypeOf(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  const ext = dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
  return Object.hasOwn(CONTENT_TYPES, ext) ? CONTENT_TYPES[ext] : DEFAULT_CONTENT_TYPE;
}
