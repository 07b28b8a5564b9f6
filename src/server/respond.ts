/**
 * Writes the response for one resolved file: validators, conditional requests (304/412),
 * a single byte range (206/416), and the body from memory or from an open fd. HEAD gets
 * exactly the headers GET would get, and no body. Nothing is ever compressed: the client
 * sends no Accept-Encoding and hashes the bytes it receives (client-protocol §2).
 */
import { closeSync } from "node:fs";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { streamFileRange, type StreamOptions } from "./file-stream.js";
import { preconditionStatus, selectRange, type ByteRange, type Validators } from "./conditional.js";

/** What the handler tells the access log about one request. */
export interface RequestRecord {
  /** Canonical path (`/pool/x`), when the target was a servable path. */
  path?: string;
  /** Body bytes handed to the socket. */
  bytes: number;
}

/** A file as served: validators and the headers every 200/206/304 of it carries. */
export interface ServedFile extends Validators {
  etag: string;
  lastModified: string;
  cacheControl: string;
  contentType: string;
  /** The whole content, for files small enough to keep in memory. */
  data?: Buffer;
  /** Headers of a plain 200 of the whole file, built at its first request (then shared). */
  okHeaders?: string[];
}

/** Sends `file`; `fd` (when given, for large files) is always closed or handed to the stream. */
export function respondWithFile(
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  file: ServedFile,
  fd: number | undefined,
  stream: StreamOptions,
): void {
  // Devices send no conditional or Range headers (client-protocol §2): the common answer is
  // a 200 with the same headers every time, so they are built once per file version.
  if (!isConditional(req.rawHeaders)) {
    file.okHeaders ??= [...baseHeaders(file), ...entityHeaders(file, file.size)];
    return sendBody(req, res, rec, file, fd, stream, 200, file.okHeaders, { start: 0, end: file.size - 1 });
  }
  const h = req.headers;
  const base = baseHeaders(file);
  const release = () => fd !== undefined && closeSync(fd);
  const pre = preconditionStatus(
    {
      ifMatch: h["if-match"],
      ifNoneMatch: h["if-none-match"],
      ifModifiedSince: h["if-modified-since"],
      ifUnmodifiedSince: h["if-unmodified-since"],
    },
    file,
  );
  if (pre === 304) {
    release();
    res.writeHead(304, base).end();
    return;
  }
  if (pre === 412) {
    release();
    return respondPlain(req, res, rec, 412, "Precondition Failed", pairs(base));
  }
  // Range applies to HEAD too, so HEAD answers exactly what GET would (RFC 9110 §9.3.2).
  const range = selectRange(h.range, first(h["if-range"]), file);
  if (range === "unsatisfiable") {
    release();
    return respondPlain(req, res, rec, 416, "Range Not Satisfiable", { ...pairs(base), "Content-Range": `bytes */${file.size}` });
  }
  const r: ByteRange = range ?? { start: 0, end: file.size - 1 };
  const headers = [...base, ...entityHeaders(file, r.end - r.start + 1)];
  if (range) headers.push("Content-Range", `bytes ${r.start}-${r.end}/${file.size}`);
  sendBody(req, res, rec, file, fd, stream, range ? 206 : 200, headers, r);
}

/** Request headers that ask for a 304, 412 or 206 (If-Range matters only with Range). */
const CONDITIONAL = new Set(["if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "range"]);

/**
 * Whether the request has any CONDITIONAL header, read from the raw list: req.headers is
 * built by Node on first use (lower-casing and merging every header), which is a measurable
 * share of a small file's request when nothing else needs it.
 */
function isConditional(raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const c = raw[i].charCodeAt(0) | 0x20; // 'i' or 'r', either case
    if ((c === 0x69 || c === 0x72) && CONDITIONAL.has(raw[i].toLowerCase())) return true;
  }
  return false;
}

/** The first value of request header `lower` (a lower-case name), from the raw list. */
export function rawHeader(req: IncomingMessage, lower: string): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === lower.length && raw[i].toLowerCase() === lower) return raw[i + 1];
  }
  return undefined;
}

/** Validators and caching: what a 200, 206, 304 and 412 of the file all carry. */
const baseHeaders = (file: ServedFile) => [
  "Accept-Ranges",
  "bytes",
  "Cache-Control",
  file.cacheControl,
  "ETag",
  file.etag,
  "Last-Modified",
  file.lastModified,
];

/** What describes the body sent (HEAD: the body GET would send). */
const entityHeaders = (file: ServedFile, length: number) => [
  "Content-Type",
  file.contentType,
  "Content-Length",
  String(length),
  "X-Content-Type-Options",
  "nosniff",
];

/** Status line, `headers`, then bytes `r` of the file (none for HEAD): one write from memory. */
function sendBody(
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  file: ServedFile,
  fd: number | undefined,
  stream: StreamOptions,
  status: number,
  headers: string[],
  r: ByteRange,
): void {
  const length = r.end - r.start + 1;
  res.writeHead(status, headers);
  if (req.method === "HEAD" || length <= 0) {
    if (fd !== undefined) closeSync(fd);
    res.end();
    return;
  }
  if (file.data) {
    rec.bytes += length;
    res.end(length === file.data.length ? file.data : file.data.subarray(r.start, r.end + 1));
    return;
  }
  streamFileRange(fd!, r.start, r.end, res, stream, (n) => (rec.bytes += n));
}

/** A short text/plain answer (errors); HEAD gets the same headers without the body. */
export function respondPlain(
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  status: number,
  text: string,
  extra: OutgoingHttpHeaders = {},
): void {
  const body = Buffer.from(`${status} ${text}\n`);
  res.writeHead(status, {
    ...extra,
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": body.length,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
  });
  if (req.method === "HEAD") res.end();
  else {
    rec.bytes += body.length;
    res.end(body);
  }
}

/** A header Node leaves as string | string[] (names it does not know): the first value. */
const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** ["A", "1", "B", "2"] → { A: "1", B: "2" }. */
function pairs(flat: string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}
