/**
 * HTTP validators, conditional requests and byte ranges (RFC 9110 §8.8, §13, §14), pure.
 *
 * The system-image client itself sends none of these (client-protocol §2), but browsers,
 * download managers, mirrors and caching proxies do, and a resumed multi-gigabyte download
 * is worth a correct 206.
 */

export interface Validators {
  size: number;
  mtimeMs: number;
}

/** Strong ETag from size and mtime (µs): changes whenever the tree replaces a file. */
export function etagOf(v: Validators): string {
  return `"${v.size.toString(16)}-${Math.floor(v.mtimeMs * 1000).toString(16)}"`;
}

export function lastModifiedOf(v: Validators): string {
  return new Date(v.mtimeMs).toUTCString();
}

/** Splits an If-None-Match / If-Match list; `*` stays `*`. */
function tagList(header: string): string[] {
  return header
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
}

const opaque = (tag: string) => (tag.startsWith("W/") ? tag.slice(2) : tag);

/** Weak comparison (If-None-Match): opaque tags equal, W/ ignored. */
function weakMatch(header: string, etag: string): boolean {
  return tagList(header).some((t) => t === "*" || opaque(t) === etag);
}

/** Strong comparison (If-Match, If-Range): identical and not weak. */
function strongMatch(header: string, etag: string): boolean {
  return tagList(header).some((t) => t === "*" || t === etag);
}

function parseDate(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const t = Date.parse(header);
  return Number.isNaN(t) ? undefined : t;
}

/** HTTP dates have whole seconds; a file modified within the same second is not newer. */
const seconds = (ms: number) => Math.floor(ms / 1000);

export interface RequestConditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

/** RFC 9110 §13.2.2 evaluation order, for GET/HEAD: 412, 304, or proceed (undefined). */
export function preconditionStatus(c: RequestConditions, v: Validators): 304 | 412 | undefined {
  const etag = etagOf(v);
  if (c.ifMatch !== undefined) {
    if (!strongMatch(c.ifMatch, etag)) return 412;
  } else {
    const since = parseDate(c.ifUnmodifiedSince);
    if (since !== undefined && seconds(v.mtimeMs) > seconds(since)) return 412;
  }
  if (c.ifNoneMatch !== undefined) return weakMatch(c.ifNoneMatch, etag) ? 304 : undefined;
  const since = parseDate(c.ifModifiedSince);
  if (since !== undefined && seconds(v.mtimeMs) <= seconds(since)) return 304;
  return undefined;
}

/** Inclusive byte range. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The range to send: a ByteRange (206), "unsatisfiable" (416), or undefined (200, whole file).
 *
 * Only a single range is honoured. A multi-range request (`bytes=0-1,5-9`) is answered with
 * 200 and the whole file, which RFC 9110 §14.2 allows (a server MAY ignore Range); no client
 * of this server asks for several ranges, and multipart/byteranges is a lot of code for none.
 * A syntactically invalid Range is ignored the same way. If-Range that does not match the
 * current validators also turns the request into a plain 200 (§13.1.5).
 */
export function selectRange(
  rangeHeader: string | undefined,
  ifRange: string | undefined,
  v: Validators,
): ByteRange | "unsatisfiable" | undefined {
  if (rangeHeader === undefined) return undefined;
  if (ifRange !== undefined && !ifRangeMatches(ifRange.trim(), v)) return undefined;
  const spec = parseRangeSpec(rangeHeader);
  if (!spec || (spec.first === "" && spec.last === "")) return undefined;
  const size = v.size;
  if (spec.first === "") {
    // Suffix range: the last N bytes.
    const n = Number(spec.last);
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(spec.first);
  if (spec.last !== "" && Number(spec.last) < start) return undefined; // invalid spec: ignore the header (§14.1.1)
  if (start >= size) return "unsatisfiable";
  return { start, end: spec.last === "" ? size - 1 : Math.min(Number(spec.last), size - 1) };
}

/**
 * Longest Range value parsed; a longer one is ignored (answered 200). A single
 * `bytes=<first>-<last>` of two 64-bit offsets with some spaces is far shorter.
 */
export const MAX_RANGE_LENGTH = 200;

const isOws = (c: number) => c === 0x20 || c === 0x09; // SP / HTAB (RFC 9110 §5.6.3)
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * `bytes = <digits> - <digits>` (either may be empty) → its two digit strings, in one pass.
 * A regex did this before and backtracked quadratically on `bytes=0-` + 16,000 spaces + `x`
 * (0.4 s of CPU per request: issue 14.1); this scanner looks at each character once.
 */
export function parseRangeSpec(h: string): { first: string; last: string } | undefined {
  if (h.length > MAX_RANGE_LENGTH) return undefined;
  let i = 0;
  const skipOws = () => {
    while (i < h.length && isOws(h.charCodeAt(i))) i++;
  };
  const digits = () => {
    const from = i;
    while (i < h.length && isDigit(h.charCodeAt(i))) i++;
    return h.slice(from, i);
  };
  skipOws();
  if (h.slice(i, i + 5).toLowerCase() !== "bytes") return undefined;
  i += 5;
  skipOws();
  if (h[i] !== "=") return undefined;
  i++;
  skipOws();
  const first = digits();
  skipOws();
  if (h[i] !== "-") return undefined;
  i++;
  skipOws();
  const last = digits();
  skipOws();
  return i === h.length ? { first, last } : undefined;
}

/** If-Range with an ETag needs a strong match; with a date, equality with Last-Modified. */
function ifRangeMatches(value: string, v: Validators): boolean {
  if (value.startsWith('"') || value.startsWith("W/")) return value === etagOf(v);
  const date = parseDate(value);
  return date !== undefined && seconds(date) === seconds(v.mtimeMs);
}
