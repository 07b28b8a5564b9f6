/**
 * The published tree over HTTP: GET and HEAD on regular files below `publish_path`, nothing
 * else. Written on node:fs rather than serve-static for exact control of what is refused and
 * of every header (client-protocol §2), and for speed:
 *
 * - Metadata calls are synchronous, as nginx makes them: on a local disk a stat takes
 *   microseconds, while a round trip through libuv's thread pool costs more than the call
 *   and capped us at a fraction of nginx's request rate.
 * - Every file is checked once with realpath (it must lie inside publish_path, with no
 *   dot-name on the way) and remembered by its identity (device, inode, size, mtime, ctime)
 *   with its response headers, and small files (the JSON and .asc) with their bytes. A
 *   request then costs one stat: the same identity means the same, already checked inode,
 *   whatever the path now points through; any change (a publish renames new files in)
 *   means a new check and a new read, so updates are visible at once.
 * - Large files stream from one open fd whose fstat must match the checked identity, so
 *   headers and body describe the same inode even while the tree is being replaced.
 */
import { closeSync, fstatSync, openSync, readFileSync, realpathSync, statSync, type Stats } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join, sep } from "node:path";
import { etagOf, lastModifiedOf } from "./conditional.js";
import { cacheControlOf, contentTypeOf } from "./content-rules.js";
import { respondPlain, respondWithFile, type RequestRecord, type ServedFile } from "./respond.js";
import { canonicalPath, pathSegments } from "./url-path.js";

export type { RequestRecord } from "./respond.js";

export interface StaticTreeOptions {
  /** Files up to this size are kept in memory. Default 256 KiB. */
  smallFileLimit?: number;
  /** Total bytes of file content kept in memory. Default 64 MiB. */
  cacheBytes?: number;
  /** Most files remembered (headers and identity). Default 20000. */
  maxEntries?: number;
  /** Read size when streaming large files. Default 256 KiB (measured best: fits in cache). */
  chunkSize?: number;
}

interface Entry extends ServedFile {
  dev: number;
  ino: number;
  ctimeMs: number;
}

/** fs errors that mean "no such servable file" rather than a server fault. */
const NOT_FOUND_CODES = new Set(["ENOENT", "ENOTDIR", "ELOOP", "ENAMETOOLONG", "EACCES", "EPERM", "EISDIR", "EINVAL"]);

const sameFile = (e: Entry, s: Stats) =>
  e.ino === s.ino && e.dev === s.dev && e.size === s.size && e.mtimeMs === s.mtimeMs && e.ctimeMs === s.ctimeMs;

export class StaticTree {
  private realRoot: string | undefined;
  private readonly entries = new Map<string, Entry>();
  private cachedBytes = 0;
  private readonly smallFileLimit: number;
  private readonly cacheBytes: number;
  private readonly maxEntries: number;
  private readonly chunkSize: number;

  constructor(
    readonly root: string,
    opts: StaticTreeOptions = {},
  ) {
    this.smallFileLimit = opts.smallFileLimit ?? 256 * 1024;
    this.cacheBytes = opts.cacheBytes ?? 64 * 1024 * 1024;
    this.maxEntries = opts.maxEntries ?? 20_000;
    this.chunkSize = opts.chunkSize ?? 256 * 1024;
  }

  /** Answers one request completely; never throws. */
  handle(req: IncomingMessage, res: ServerResponse, rec: RequestRecord): void {
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") {
      return respondPlain(req, res, rec, 405, "Method Not Allowed", { Allow: "GET, HEAD" });
    }
    const segments = pathSegments(req.url ?? "");
    if (!segments) return respondPlain(req, res, rec, 404, "Not Found");
    rec.path = canonicalPath(segments);
    const file = join(this.root, ...segments);
    let fd: number | undefined;
    try {
      // A file replaced between stat and open is looked up again (twice at most).
      for (let attempt = 0; attempt < 3; attempt++) {
        const st = statSync(file, { throwIfNoEntry: false });
        if (!st?.isFile()) return respondPlain(req, res, rec, 404, "Not Found");
        const known = this.entries.get(file);
        const entry = known && sameFile(known, st) ? known : this.check(file, rec.path, st);
        if (!entry) return respondPlain(req, res, rec, 404, "Not Found");
        if (entry.data || method === "HEAD") return respondWithFile(req, res, rec, entry, undefined, this.chunkSize);
        fd = openSync(file, "r");
        if (sameFile(entry, fstatSync(fd))) {
          const open = fd;
          fd = undefined;
          return respondWithFile(req, res, rec, entry, open, this.chunkSize);
        }
        closeSync(fd);
        fd = undefined;
      }
      return respondPlain(req, res, rec, 503, "Service Unavailable", { "Retry-After": "1" });
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (NOT_FOUND_CODES.has(code)) return respondPlain(req, res, rec, 404, "Not Found");
      if (code === "EMFILE" || code === "ENFILE") {
        return respondPlain(req, res, rec, 503, "Service Unavailable", { "Retry-After": "1" });
      }
      return respondPlain(req, res, rec, 500, "Internal Server Error");
    }
  }

  /**
   * First sight of this file (or of a new version): its real path must lie inside the tree
   * (a symlink may not lead out of publish_path, nor to a dot-name such as a temp file in
   * it). Small files are read here, through one fd, so the bytes match the identity.
   */
  private check(file: string, path: string, st: Stats): Entry | undefined {
    const real = this.inside(realpathSync.native(file));
    if (real === undefined) return undefined;
    if (st.size > this.smallFileLimit) return this.remember(file, entryOf(path, st));
    const fd = openSync(real, "r");
    try {
      const fst = fstatSync(fd);
      if (fst.size > this.smallFileLimit) return this.remember(file, entryOf(path, fst)); // grew meanwhile
      const data = readFileSync(fd);
      const entry = entryOf(path, fst, data);
      // Written in place while we read (not by our atomic publisher): serve what was read,
      // with a length that matches it, but do not remember it.
      return data.length === fst.size ? this.remember(file, entry) : { ...entry, size: data.length };
    } finally {
      closeSync(fd);
    }
  }

  /** `real` when it lies inside the tree's real root and passes through no dot-name. */
  private inside(real: string): string | undefined {
    for (let attempt = 0; attempt < 2; attempt++) {
      // publish_path itself may be a symlink that is re-pointed: re-resolve once on a miss.
      if (this.realRoot === undefined || attempt === 1) this.realRoot = realpathSync.native(this.root);
      const prefix = this.realRoot.endsWith(sep) ? this.realRoot : this.realRoot + sep;
      if (real.startsWith(prefix)) {
        return real.slice(prefix.length).split(sep).some((s) => s.startsWith(".")) ? undefined : real;
      }
    }
    return undefined;
  }

  private remember(file: string, entry: Entry): Entry {
    const old = this.entries.get(file);
    if (old) this.forget(file, old);
    const size = entry.data?.length ?? 0;
    if (size > this.cacheBytes) return entry;
    // Oldest first out: Map iteration follows insertion order.
    for (const [key, e] of this.entries) {
      if (this.cachedBytes + size <= this.cacheBytes && this.entries.size < this.maxEntries) break;
      this.forget(key, e);
    }
    this.entries.set(file, entry);
    this.cachedBytes += size;
    return entry;
  }

  private forget(file: string, entry: Entry): void {
    this.entries.delete(file);
    this.cachedBytes -= entry.data?.length ?? 0;
  }
}

function entryOf(path: string, st: Stats, data?: Buffer): Entry {
  return {
    dev: st.dev,
    ino: st.ino,
    ctimeMs: st.ctimeMs,
    size: st.size,
    mtimeMs: st.mtimeMs,
    etag: etagOf(st),
    lastModified: lastModifiedOf(st),
    cacheControl: cacheControlOf(path),
    contentType: contentTypeOf(path),
    data,
  };
}
