/**
 * Content-Type and Cache-Control of a published file, from its path alone (pure).
 */

/** Types by suffix; everything else (tarballs of other kinds, images) is opaque bytes. */
export function contentTypeOf(path: string): string {
  if (path.endsWith(".json")) return "application/json";
  if (path.endsWith(".asc")) return "application/pgp-signature";
  if (path.endsWith(".xz")) return "application/x-xz";
  return "application/octet-stream";
}

/** Revalidate every time: these change with every publish and are cheap to 304. */
export const CACHE_MUTABLE = "no-cache";
/** Pool files are content-addressed (server-reference §3): a name never gets new bytes. */
export const CACHE_IMMUTABLE = "public, max-age=31536000, immutable";
/** Keyrings, version tarballs, signatures of pool files: rarely change, but may (re-signing). */
export const CACHE_SHORT = "public, max-age=300";

/**
 * channels.json, every index.json and their signatures change on each publish: a cache
 * holding a stale pair, or a new document with an old .asc, makes devices fail signature
 * checks (client-protocol §9). Pool payloads never change; their .asc files do when the
 * tree is re-signed after a key rotation, so those only get the short lifetime.
 */
export function cacheControlOf(path: string): string {
  const bare = path.endsWith(".asc") ? path.slice(0, -4) : path;
  if (bare === "/channels.json" || bare.endsWith("/index.json")) return CACHE_MUTABLE;
  if (path.startsWith("/pool/") && !path.endsWith(".asc")) return CACHE_IMMUTABLE;
  return CACHE_SHORT;
}
