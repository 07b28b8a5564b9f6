/**
 * The published tree over HTTP: GET and HEAD on regular files below `publish_path`, nothing
 * else. Written on node:fs rather than serve-static for exact control of what is refused and
 * of every header (client-protocol §2: HEAD before GET on every URL, any status >= 400 is
 * fatal, no compression), and for speed:
 *
 * - metadata calls (realpath, stat, open) are synchronous, as nginx makes them: on a local
 *   disk they take microseconds, while a round trip through libuv's thread pool costs more
 *   than the call and capped us at a fraction of nginx's request rate;
 * - small files (all the JSON and .asc) are kept in memory with their response headers, and
 *   revalidated by one stat per request (inode, size, mtime, ctime), so a publish is seen at
 *   once;
 * - large files stream from one open fd whose fstat gave the headers, so headers and body
 *   always describe the same inode even while the tree is being replaced.
 */
import { createReadStream, fstatSync, openSync, closeSync, readFileSync, realpathSync, statSync, type Stats } from "node:fs";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { join, sep } from "node:path";
import { pipeline } from "node:stream";
import { cacheControlOf, contentTypeOf } from "./content-rules.js";
import { etagOf, lastModifiedOf, preconditionStatus, selectRange, type ByteRange, type Validators } from "./conditional.js";
import { canonicalPath, pathSegments } from "./url-path.js";

/** What the handler tells the access log about one request. */
export interface RequestRecord {
  /** Canonical path (`/pool/x`), when the target was a servable path. */
  path?: string;
  /** Body bytes handed to the socket. */
  bytes: number;
}

export interface StaticTreeOptions {
  /** Files up to this size are cached in memory. Default 256 KiB. */
  smallFileLimit?: number;
  /** Total bytes of the memory cache. Default 64 MiB. */
  cacheBytes?: number;
  /** Read size when streaming large files. Default 1 MiB (fewer, larger socket writes). */
  chunkSize?: number;
}

/** A file's identity and the headers every 200/206/304 of it carries. */
interface FileInfo extends Validators {
  path: string;
  etag: string;
  lastModified: string;
  cacheControl: string;
  contentType: string;
}

interface Cached extends FileInfo {
  ino: number;
  ctimeMs: number;
  data: Buffer;
}

/** fs errors that mean "no such servable file" rather than a server fault. */
const NOT_FOUND_CODES = new Set(["ENOENT", "ENOTDIR", "ELOOP", "ENAMETOOLONG", "EACCES", "EPERM", "EISDIR", "EINVAL"]);

const sameFile = (c: Cached, s: Stats) =>
  c.ino === s.ino && c.size === s.size && c.mtimeMs === s.mtimeMs && c.ctimeMs === s.ctimeMs;

function fileInfo(path: string, v: Validators): FileInfo {
  return {
    path,
    size: v.size,
    mtimeMs: v.mtimeMs,
    etag: etagOf(v),
    lastModified: lastModifiedOf(v),
    cacheControl: cacheControlOf(path),
    contentType: contentTypeOf(path),
  };
}

export class StaticTree {
  private realRoot: string | undefined;
  private readonly cache = new Map<string, Cached>();
  private cachedBytes = 0;
  private readonly smallFileLimit: number;
  private readonly cacheBytes: number;
  private readonly chunkSize: number;

  constructor(
    readonly root: string,
    opts: StaticTreeOptions = {},
  ) {
    this.smallFileLimit = opts.smallFileLimit ?? 256 * 1024;
    this.cacheBytes = opts.cacheBytes ?? 64 * 1024 * 1024;
    this.chunkSize = opts.chunkSize ?? 1024 * 1024;
  }

  /** Answers one request completely; never throws. */
  handle(req: IncomingMessage, res: ServerResponse, rec: RequestRecord): void {
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") {
      return plain(req, res, rec, 405, "Method Not Allowed", { Allow: "GET, HEAD" });
    }
    const segments = pathSegments(req.url ?? "");
    if (!segments) return plain(req, res, rec, 404, "Not Found");
    const path = canonicalPath(segments);
    rec.path = path;
    let fd: number | undefined;
    try {
      const real = this.resolve(segments);
      const found = real === undefined ? undefined : statSync(real, { throwIfNoEntry: false });
      if (real === undefined || !found?.isFile()) return plain(req, res, rec, 404, "Not Found");
      if (found.size <= this.smallFileLimit) {
        const hit = this.cache.get(real);
        const file = hit && sameFile(hit, found) ? hit : this.load(real, path);
        return this.respond(req, res, rec, file, file.data);
      }
      if (method === "HEAD") return this.respond(req, res, rec, fileInfo(path, found));
      // Headers from the open fd: a rename over the path after stat() cannot desync them.
      fd = openSync(real, "r");
      const file = fileInfo(path, fstatSync(fd));
      const open = fd;
      fd = undefined;
      this.respond(req, res, rec, file, undefined, open);
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (NOT_FOUND_CODES.has(code)) return plain(req, res, rec, 404, "Not Found");
      if (code === "EMFILE" || code === "ENFILE") {
        return plain(req, res, rec, 503, "Service Unavailable", { "Retry-After": "1" });
      }
      return plain(req, res, rec, 500, "Internal Server Error");
    }
  }

  /**
   * Real path of the file, or undefined when it lies outside the tree (a symlink escaping
   * publish_path) or passes through a dot-name there (a temp file behind a symlink).
   */
  private resolve(segments: string[]): string | undefined {
    const real = realpathSync.native(join(this.root, ...segments));
    for (let attempt = 0; attempt < 2; attempt++) {
      // publish_path itself may be a symlink that is re-pointed: re-resolve once on a miss.
      if (this.realRoot === undefined || attempt === 1) this.realRoot = realpathSync.native(this.root);
      const prefix = this.realRoot.endsWith(sep) ? this.realRoot : this.realRoot + sep;
      if (real.startsWith(prefix)) {
        const inside = real.slice(prefix.length).split(sep);
        return inside.some((s) => s.startsWith(".")) ? undefined : real;
      }
    }
    return undefined;
  }

  /** Reads a small file through one fd and caches it with its headers. */
  private load(real: string, path: string): Cached {
    const fd = openSync(real, "r");
    try {
      const st = fstatSync(fd);
      const data = readFileSync(fd);
      // A file written in place (not by our atomic publisher) may change under us: serve
      // what was read, with a length that matches it, and do not cache it.
      const entry: Cached = { ...fileInfo(path, { size: data.length, mtimeMs: st.mtimeMs }), ino: st.ino, ctimeMs: st.ctimeMs, data };
      if (data.length === st.size) this.remember(real, entry);
      return entry;
    } finally {
      closeSync(fd);
    }
  }

  private remember(real: string, entry: Cached): void {
    const old = this.cache.get(real);
    if (old) {
      this.cache.delete(real);
      this.cachedBytes -= old.data.length;
    }
    if (entry.data.length > this.cacheBytes) return;
    // Oldest first out: Map iteration follows insertion order.
    for (const [key, c] of this.cache) {
      if (this.cachedBytes + entry.data.length <= this.cacheBytes) break;
      this.cache.delete(key);
      this.cachedBytes -= c.data.length;
    }
    this.cache.set(real, entry);
    this.cachedBytes += entry.data.length;
  }

  private respond(
    req: IncomingMessage,
    res: ServerResponse,
    rec: RequestRecord,
    file: FileInfo,
    data?: Buffer,
    fd?: number,
  ): void {
    const h = req.headers;
    const base = ["Accept-Ranges", "bytes", "Cache-Control", file.cacheControl, "ETag", file.etag, "Last-Modified", file.lastModified];
    let range: ByteRange | undefined;
    // Devices send no conditional or Range headers (client-protocol §2): skip the work then.
    if (h["if-match"] ?? h["if-none-match"] ?? h["if-modified-since"] ?? h["if-unmodified-since"] ?? h.range) {
      const pre = preconditionStatus(
        { ifMatch: h["if-match"], ifNoneMatch: h["if-none-match"], ifModifiedSince: h["if-modified-since"], ifUnmodifiedSince: h["if-unmodified-since"] },
        file,
      );
      if (pre !== undefined && fd !== undefined) closeSync(fd);
      if (pre === 304) return void res.writeHead(304, base).end();
      if (pre === 412) return plain(req, res, rec, 412, "Precondition Failed", pairs(base));
      // Range applies to HEAD too, so HEAD answers exactly what GET would (RFC 9110 §9.3.2).
      const selected = selectRange(h.range, header(h["if-range"]), file);
      if (selected === "unsatisfiable") {
        if (fd !== undefined) closeSync(fd);
        return plain(req, res, rec, 416, "Range Not Satisfiable", { ...pairs(base), "Content-Range": `bytes */${file.size}` });
      }
      range = selected;
    }
    const r: ByteRange = range ?? { start: 0, end: file.size - 1 };
    const length = r.end - r.start + 1;
    const headers = [...base, "Content-Type", file.contentType, "Content-Length", String(length), "X-Content-Type-Options", "nosniff"];
    if (range) headers.push("Content-Range", `bytes ${r.start}-${r.end}/${file.size}`);
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === "HEAD" || length === 0) {
      if (fd !== undefined) closeSync(fd);
      res.end();
      return;
    }
    if (data) {
      rec.bytes += length;
      res.end(length === data.length ? data : data.subarray(r.start, r.end + 1));
      return;
    }
    const stream = createReadStream("", { fd, start: r.start, end: r.end, highWaterMark: this.chunkSize, autoClose: true });
    stream.on("data", (chunk: string | Buffer) => {
      rec.bytes += chunk.length;
    });
    // An aborted download destroys both ends; the fd closes with the stream.
    pipeline(stream, res, () => undefined);
  }
}

/** A header Node leaves as string | string[] (unknown names): the first value. */
const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** ["A", "1", "B", "2"] → { A: "1", B: "2" }. */
function pairs(flat: string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1];
  return out;
}

/** A short text/plain answer (errors); HEAD gets the same headers without the body. */
function plain(
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
