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
 *   with its response headers, and small files (the JSON and .asc) with their bytes. Any
 *   change of identity (a publish renames new files in) means a new check and a new read.
 * - Small files are answered from memory without touching the disk: the stat that compares
 *   identities was about a quarter of the CPU time of a request for channels.json. A copy is
 *   re-checked (one stat) when an inotify event on its directory names it (dir-watch.ts:
 *   within an event-loop turn of the rename), and in any case when it was last checked more
 *   than `revalidateMs` (default 10 ms) ago: the bound on serving an old channels.json,
 *   index.json or .asc after a publish replaced it, should the event be missed (a directory
 *   renamed away and replaced, a file system without inotify). A publish renames a document
 *   and at once its signature (src/tree/commit.ts), so both events come in the same read and
 *   both copies go together; a device that still gets a pair from two commits retries
 *   channels.json after fetching the keyring (client-protocol §3 step 4), well after the
 *   bound, and takes each index from a content-named file that never changes
 *   (src/tree/versioned-index.ts). A deleted file answers 404 within the same bound.
 * - Large files stream from one open fd whose fstat must match the checked identity, so
 *   headers and body describe the same inode even while the tree is being replaced; they are
 *   never served from memory and never stale.
 */
import { closeSync, fstatSync, openSync, readFileSync, realpathSync, statSync, type Stats } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join, sep } from "node:path";
import { etagOf, lastModifiedOf } from "./conditional.js";
import { cacheControlOf, contentTypeOf } from "./content-rules.js";
import { DirWatches } from "./dir-watch.js";
import { SETTLE_MAX_MS, SETTLE_POLL_MS, pairState } from "./pair-settle.js";
import type { StreamOptions } from "./file-stream.js";
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
  /** A response whose client takes no data for this long is cut (serve_send_timeout). Default 60 s. */
  sendTimeoutMs?: number;
  /**
   * Longest time a file kept in memory is served without a stat (the staleness bound when
   * no inotify event announces a change). Default 10 ms; 0 stats on every request.
   */
  revalidateMs?: number;
  /** Watch the directories of in-memory files with inotify. Default true. */
  watch?: boolean;
  /** Longest wait for a document's signature to follow it (pair-settle.ts). Default 1 s. */
  settleMaxMs?: number;
}

interface Entry extends ServedFile {
  dev: number;
  ino: number;
  ctimeMs: number;
  /** performance.now() of the last stat that found this identity; -Infinity: re-check. */
  checkedAt: number;
}

/** A request target resolved to the file it names. */
interface Target {
  file: string;
  /** Canonical URL path (`/pool/x`), for headers, logs and counts. */
  path: string;
}

/**
 * Request targets remembered with their resolution (devices ask for the same few URLs all
 * day); longer targets than MAX_TARGET_LENGTH are resolved every time, so that odd requests
 * cannot fill memory (at most ~2048 × 1.5 KB).
 */
const MAX_TARGETS = 2048;
const MAX_TARGET_LENGTH = 512;

/** fs errors that mean "no such servable file" rather than a server fault. */
const NOT_FOUND_CODES = new Set(["ENOENT", "ENOTDIR", "ELOOP", "ENAMETOOLONG", "EACCES", "EPERM", "EISDIR", "EINVAL"]);

const sameFile = (e: Entry, s: Stats) =>
  e.ino === s.ino && e.dev === s.dev && e.size === s.size && e.mtimeMs === s.mtimeMs && e.ctimeMs === s.ctimeMs;

export class StaticTree {
  private realRoot: string | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly targets = new Map<string, Target | null>();
  private readonly watches: DirWatches | undefined;
  private cachedBytes = 0;
  private readonly smallFileLimit: number;
  private readonly cacheBytes: number;
  private readonly maxEntries: number;
  private readonly stream: StreamOptions;
  private readonly revalidateMs: number;
  private readonly settleMaxMs: number;
  /** Requests held until the signature of what they ask for follows it: when they came. */
  private readonly held = new WeakMap<IncomingMessage, number>();
  /** States of pairs whose wait ran out (PairState.key). */
  private readonly gaveUp = new Set<string>();

  constructor(
    readonly root: string,
    opts: StaticTreeOptions = {},
  ) {
    this.smallFileLimit = opts.smallFileLimit ?? 256 * 1024;
    this.cacheBytes = opts.cacheBytes ?? 64 * 1024 * 1024;
    this.maxEntries = opts.maxEntries ?? 20_000;
    this.stream = { chunkSize: opts.chunkSize ?? 256 * 1024, sendTimeoutMs: opts.sendTimeoutMs ?? 60_000 };
    this.revalidateMs = opts.revalidateMs ?? 10;
    this.settleMaxMs = opts.settleMaxMs ?? SETTLE_MAX_MS;
    if (opts.watch ?? true) this.watches = new DirWatches((dir, name) => this.changed(dir, name));
  }

  /** Answers one request completely; never throws. */
  handle(req: IncomingMessage, res: ServerResponse, rec: RequestRecord): void {
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") {
      return respondPlain(req, res, rec, 405, "Method Not Allowed", { Allow: "GET, HEAD" });
    }
    const target = this.resolve(req.url ?? "");
    if (!target) return respondPlain(req, res, rec, 404, "Not Found");
    rec.path = target.path;
    const file = target.file;
    const known = this.entries.get(file);
    // In memory and checked recently, with no event since: no disk access at all.
    if (known?.data && performance.now() - known.checkedAt < this.revalidateMs) {
      return respondWithFile(req, res, rec, known, undefined, this.stream);
    }
    let fd: number | undefined;
    try {
      // A file replaced between stat and open is looked up again (twice at most).
      for (let attempt = 0; attempt < 3; attempt++) {
        // Taken before the stat: a change after this instant is either announced by the
        // watch or caught by the next re-check, at most revalidateMs later.
        const checkedAt = performance.now();
        const st = statSync(file, { throwIfNoEntry: false });
        const current = this.entries.get(file);
        if (!st?.isFile()) {
          if (current) this.forget(file, current);
          return respondPlain(req, res, rec, 404, "Not Found");
        }
        // A small signed document or its signature caught between the commit's two renames:
        // answer only once the signature has followed (pair-settle.ts; client-protocol §3
        // step 4). Nothing is remembered while held, so no other request gets it from memory.
        if (st.size <= this.smallFileLimit && this.holdWhilePairSettles(req, res, rec, file, target.path, st)) return;
        let entry: Entry | undefined;
        if (current && sameFile(current, st)) {
          entry = current;
          entry.checkedAt = checkedAt;
        } else {
          // Changed without an event: the watch follows a directory no longer at this path.
          if (current?.data && current.checkedAt !== -Infinity) this.watches?.restart(dirname(file));
          entry = this.check(file, target.path, st, checkedAt);
        }
        if (!entry) {
          // Now leads out of the tree or to a dot-name: the old version must go too.
          const old = this.entries.get(file);
          if (old) this.forget(file, old);
          return respondPlain(req, res, rec, 404, "Not Found");
        }
        if (entry.data || method === "HEAD") return respondWithFile(req, res, rec, entry, undefined, this.stream);
        fd = openSync(file, "r");
        if (sameFile(entry, fstatSync(fd))) {
          const open = fd;
          fd = undefined;
          return respondWithFile(req, res, rec, entry, open, this.stream);
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
   * True when the request is held (answered later, by handle() again): `file` belongs to a
   * pair whose document is newer than its signature, and the wait is not over. Either way the
   * other half's remembered copy is re-checked at its next request. A wait that ran out (a
   * writer killed between the renames) is remembered for that state of the pair.
   */
  private holdWhilePairSettles(
    req: IncomingMessage,
    res: ServerResponse,
    rec: RequestRecord,
    file: string,
    path: string,
    st: Stats,
  ): boolean {
    const pair = pairState(file, path, st);
    if (pair === undefined) return this.release(req);
    const partner = this.entries.get(pair.partner);
    if (partner) partner.checkedAt = -Infinity;
    if (!pair.lags || this.gaveUp.has(pair.key)) return this.release(req);
    const since = this.held.get(req) ?? performance.now();
    if (performance.now() - since >= this.settleMaxMs || req.destroyed) {
      if (this.gaveUp.size >= MAX_TARGETS) this.gaveUp.clear();
      this.gaveUp.add(pair.key);
      return this.release(req);
    }
    this.held.set(req, since);
    setTimeout(() => this.handle(req, res, rec), SETTLE_POLL_MS).unref();
    return true;
  }

  private release(req: IncomingMessage): false {
    this.held.delete(req);
    return false;
  }

  /** Stops watching directories (the server is closing). */
  close(): void {
    this.watches?.close();
  }

  /** Request target → file, or null when it must not be served (url-path.ts, pure). */
  private resolve(url: string): Target | null {
    let target = this.targets.get(url);
    if (target === undefined) {
      const segments = pathSegments(url);
      target = segments ? { file: join(this.root, ...segments), path: canonicalPath(segments) } : null;
      if (url.length > MAX_TARGET_LENGTH) return target;
      if (this.targets.size >= MAX_TARGETS) this.targets.clear();
      this.targets.set(url, target);
    }
    return target;
  }

  /** inotify: `name` in `dir` changed (undefined: anything in dir may have). Re-check at next use. */
  private changed(dir: string, name: string | undefined): void {
    if (name !== undefined) {
      const entry = this.entries.get(join(dir, name));
      if (entry) entry.checkedAt = -Infinity;
      // A document renamed in: its signature is checked too before it is served again.
      const sig = this.entries.get(join(dir, `${name}.asc`));
      if (sig) sig.checkedAt = -Infinity;
      return;
    }
    for (const [file, entry] of this.entries) if (dirname(file) === dir) entry.checkedAt = -Infinity;
  }

  /**
   * First sight of this file (or of a new version): its real path must lie inside the tree
   * (a symlink may not lead out of publish_path, nor to a dot-name such as a temp file in
   * it). Small files are read here, through one fd, so the bytes match the identity.
   */
  private check(file: string, path: string, st: Stats, checkedAt: number): Entry | undefined {
    const real = this.inside(realpathSync.native(file));
    if (real === undefined) return undefined;
    if (st.size > this.smallFileLimit) return this.remember(file, entryOf(path, st), checkedAt);
    const fd = openSync(real, "r");
    try {
      const fst = fstatSync(fd);
      if (fst.size > this.smallFileLimit) return this.remember(file, entryOf(path, fst), checkedAt); // grew meanwhile
      const data = readFileSync(fd);
      const entry = entryOf(path, fst, data);
      // Written in place while we read (not by our atomic publisher): serve what was read,
      // with a length that matches it, but do not remember it.
      return data.length === fst.size ? this.remember(file, entry, checkedAt) : { ...entry, size: data.length };
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
        return real
          .slice(prefix.length)
          .split(sep)
          .some((s) => s.startsWith("."))
          ? undefined
          : real;
      }
    }
    return undefined;
  }

  private remember(file: string, entry: Entry, checkedAt: number): Entry {
    const size = entry.data?.length ?? 0;
    // Watch before the entry counts as checked (an event from now on re-checks it), and
    // before the old version lets go of the directory, so the watch stays up across versions.
    const watched = size <= this.cacheBytes && entry.data !== undefined;
    if (watched) this.watches?.add(dirname(file));
    const old = this.entries.get(file);
    if (old) this.forget(file, old);
    if (size > this.cacheBytes) return entry;
    // Oldest first out: Map iteration follows insertion order.
    for (const [key, e] of this.entries) {
      if (this.cachedBytes + size <= this.cacheBytes && this.entries.size < this.maxEntries) break;
      this.forget(key, e);
    }
    entry.checkedAt = checkedAt;
    this.entries.set(file, entry);
    this.cachedBytes += size;
    return entry;
  }

  private forget(file: string, entry: Entry): void {
    this.entries.delete(file);
    this.cachedBytes -= entry.data?.length ?? 0;
    if (entry.data) this.watches?.remove(dirname(file));
  }
}

function entryOf(path: string, st: Stats, data?: Buffer): Entry {
  return {
    dev: st.dev,
    ino: st.ino,
    ctimeMs: st.ctimeMs,
    checkedAt: -Infinity,
    size: st.size,
    mtimeMs: st.mtimeMs,
    etag: etagOf(st),
    lastModified: lastModifiedOf(st),
    cacheControl: cacheControlOf(path),
    contentType: contentTypeOf(path),
    data,
  };
}
