/**
 * Writes the response for one resolved file: validators, conditional requests (304/412),
 * a single byte range (206/416), and the body from memory or from an open fd. HEAD gets
 * exactly the headers GET would get, and no body. Nothing is ever compressed: the client
 * sends no Accept-Encoding and hashes the bytes it receives (client-protocol §2).
 */
import { closeSync } from "node:fs";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { streamFileRange } from "./file-stream.js";
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
}

/** Sends `file`; `fd` (when given, for large files) is always closed or handed to the stream. */
export function respondWithFile(
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  file: ServedFile,
  fd: number | undefined,
  chunkSize: number,
): void {
  const h = req.headers;
  const base = ["Accept-Ranges", "bytes", "Cache-Control", file.cacheControl, "ETag", file.etag, "Last-Modified", file.lastModified];
  const release = () => fd !== undefined && closeSync(fd);
  let range: ByteRange | undefined;
  // Devices send no conditional or Range headers (client-protocol §2): skip the work then.
  if (h["if-match"] ?? h["if-none-match"] ?? h["if-modified-since"] ?? h["if-unmodified-since"] ?? h.range) {
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
    const selected = selectRange(h.range, first(h["if-range"]), file);
    if (selected === "unsatisfiable") {
      release();
      return respondPlain(req, res, rec, 416, "Range Not Satisfiable", { ...pairs(base), "Content-Range": `bytes */${file.size}` });
    }
    range = selected;
  }
  const r: ByteRange = range ?? { start: 0, end: file.size - 1 };
  const length = r.end - r.start + 1;
  const headers = [...base, "Content-Type", file.contentType, "Content-Length", String(length), "X-Content-Type-Options", "nosniff"];
  if (range) headers.push("Content-Range", `bytes ${r.start}-${r.end}/${file.size}`);
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === "HEAD" || length === 0) {
    release();
    res.end();
    return;
  }
  if (file.data) {
    rec.bytes += length;
    res.end(length === file.data.length ? file.data : file.data.subarray(r.start, r.end + 1));
    return;
  }
  streamFileRange(fd!, r.start, r.end, res, chunkSize, (n) => (rec.bytes += n));
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
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1];
  return out;
}
