/**
 * `http` and `http-cdimage` (server-reference §5.4.5, §5.4.7): a file downloaded from a URL,
 * named after its version. The version is the `monitor=` URL's one-line body, or else the
 * SHA-256 of the downloaded bytes; the per-run cache (`"http_" + url`) remembers it, so a
 * second device of the same run neither asks the monitor again nor downloads again.
 *
 * `http` publishes the download as is, so it must already be an xz'd system-image tarball.
 * `http-cdimage` takes a gzip'd rootfs and repacks it like cdimage-ubuntu (Android entries
 * always). Downloads land in `<publish>/pool/.tmp-*` and are renamed into place.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { repackRootfs } from "../archive/rootfs-repack.js";
import { guessCompression } from "../archive/compression.js";
import { GeneratorError, errorMessage } from "../errors.js";
import type { JsonValue } from "../format/pyjson.js";
import { optionsAt, requireArgs } from "./args.js";
import { poolPath, publishPoolFile, withPoolTemp } from "./pool.js";
import { checkedItem, makeOrigin, reuseOwned, type OwnerClaim } from "./pool-owner.js";
import { fetchOpts, type Generator, type GeneratorContext } from "./types.js";
import { imageLimits } from "../config/types.js";

interface Flavour {
  /** The generator name, recorded as the pool file's owner. */
  generator: "http" | "http-cdimage";
  /** The sidecar's legacy `generator` value (§2.6). */
  sidecarGenerator: "http" | "cdimage-ubports";
  defaultName: string;
  /** The reference's socket timeouts: 5 s for http, 20 s for http-cdimage. */
  downloadTimeoutMs: number;
  /** Repack a gzip'd rootfs (http-cdimage) instead of publishing an xz tarball as is. */
  cdimage: boolean;
}

const MONITOR_TIMEOUT_MS = 5_000;
/** A monitor answers one short line; anything bigger is not a monitor. */
const MONITOR_MAX_BYTES = 64 << 10;

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** A name or version that becomes part of a pool file name. */
function checkNamePart(what: string, value: string): void {
  if (value === "" || /[/\0]/.test(value) || value === "." || value === "..") {
    throw new GeneratorError(`invalid ${what} ${JSON.stringify(value)}: it becomes part of a pool file name`);
  }
}

/** §5.4.5 step 2: the monitor body, stripped; empty or several lines is an error (VersionError). */
async function monitorVersion(ctx: GeneratorContext, monitor: string): Promise<string> {
  let body: string;
  try {
    body = await ctx.fetcher.text(
      monitor,
      fetchOpts(ctx, { connectTimeoutMs: MONITOR_TIMEOUT_MS, readTimeoutMs: MONITOR_TIMEOUT_MS, maxBytes: MONITOR_MAX_BYTES }),
    );
  } catch (err) {
    throw new GeneratorError(`monitor failed: ${errorMessage(err)}`, "Exception", { cause: err });
  }
  const value = body.trim();
  if (value === "") throw new GeneratorError(`invalid monitor value from ${monitor}: the body is empty`);
  if (/[\r\n]/.test(value))
    throw new GeneratorError(`invalid monitor value from ${monitor}: ${value.split(/\r?\n/).length} lines, expected one`);
  checkNamePart(`monitor value from ${monitor}:`, value);
  return value;
}

async function head(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Who owns `<name>-<version>`: with a monitor, the URL, name and version; with a content hash
 * (no monitor), the name and the hash (any URL serving those bytes made the same file).
 */
function claimFor(f: Flavour, env: Parameters<Generator>[2], url: string, name: string, version: string, monitored: boolean): OwnerClaim {
  return {
    origin: makeOrigin(env, f.generator, { url, name, version }),
    identity: monitored ? ["generator", "url", "name", "version"] : ["generator", "name", "version"],
    legacy: (s) =>
      s.generator === f.sidecarGenerator &&
      (typeof s.version === "string" || typeof s.version === "number") &&
      String(s.version) === version &&
      (!monitored || s.url === url) &&
      (typeof s.version_detail !== "string" || s.version_detail.startsWith(`${name}=`)),
  };
}

function httpGenerator(f: Flavour): Generator {
  return async (ctx, args, env) => {
    requireArgs(args, ["url"]);
    const url = args[0];
    const opts = optionsAt(args, 1);
    const name = opts.name ?? f.defaultName;
    checkNamePart("name", name);
    const cacheKey = `http_${url}`;
    let version = ctx.cache.get(cacheKey) ?? null;
    let target: string | null = null;
    // A content hash (no monitor) names the bytes, not the URL.
    const monitored = opts.monitor !== undefined;
    /** `<name>=<version>`, grammar-checked: it reaches channel.ini (issue 13 #1). */
    const detailOf = (v: string) => checkedItem(opts.monitor ?? url, name, v);

    if (opts.monitor !== undefined || version !== null) {
      if (version === null) {
        version = await monitorVersion(ctx, opts.monitor);
        ctx.cache.set(cacheKey, version);
      }
      const detail = detailOf(version);
      const claim = claimFor(f, env, url, name, version, monitored);
      // Legacy name (servers before Sept 2014), then the hashed one (§1.2).
      const legacy = poolPath(ctx, `${name}-${version}.tar.xz`);
      if (await reuseOwned(ctx, env, legacy, detail, claim)) return legacy;
      target = poolPath(ctx, `${name}-${sha256(`${url}:${version}`)}.tar.xz`);
      if (await reuseOwned(ctx, env, target, detail, claim)) return target;
    }

    return withPoolTemp(ctx, async (dir) => {
      const download = join(dir, "download");
      const got = await ctx.fetcher.download(url, download, {
        ...fetchOpts(ctx, { readTimeoutMs: f.downloadTimeoutMs }),
        expectArchive: true,
      });
      const kind = guessCompression(await head(download, 6));
      const wanted = f.cdimage ? "gzip" : "xz";
      if (kind !== wanted) {
        const hint = f.cdimage ? "" : kind === "gzip" ? " (a gzip'd rootfs needs http-cdimage)" : "";
        throw new GeneratorError(`${url} is not a ${wanted} file but ${kind ?? "uncompressed data"}${hint}`);
      }
      if (version === null) {
        // No monitor: the content hash is the version (and the legacy name is the pool name).
        version = got.sha256;
        target = poolPath(ctx, `${name}-${version}.tar.xz`);
        if (await reuseOwned(ctx, env, target, detailOf(version), claimFor(f, env, url, name, version, monitored))) {
          ctx.cache.set(cacheKey, version);
          return target;
        }
      }
      const detail = detailOf(version);
      const path = target!;
      const origin = claimFor(f, env, url, name, version, monitored).origin as Record<string, JsonValue>;
      if (f.cdimage) {
        const product = opts.product ?? "touch";
        await publishPoolFile(
          (out: Writable) =>
            repackRootfs(createReadStream(download), out, {
              product,
              alwaysAndroid: true,
              now: ctx.clock(),
              xzLevel: ctx.config.xz_level,
              limits: imageLimits(ctx.config),
              label: url,
            }),
          path,
          ctx,
          { sidecar: { generator: "cdimage-ubports", version, version_detail: detail, rootfs_path: download, url, origin } },
        );
      } else {
        await publishPoolFile(download, path, ctx, { sidecar: { generator: "http", version, version_detail: detail, url, origin } });
      }
      // Cached only once the file exists: a cached content hash is looked up by its legacy name.
      ctx.cache.set(cacheKey, version);
      env.version_detail.push(detail);
      ctx.log(`I: wrote ${path} from ${url}`);
      return path;
    });
  };
}

export const http = httpGenerator({
  generator: "http",
  sidecarGenerator: "http",
  defaultName: "http",
  downloadTimeoutMs: 5_000,
  cdimage: false,
});
export const httpCdimage = httpGenerator({
  generator: "http-cdimage",
  sidecarGenerator: "cdimage-ubports",
  defaultName: "http-cdimage",
  downloadTimeoutMs: 20_000,
  cdimage: true,
});
