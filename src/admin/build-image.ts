/**
 * What copy-image and tag-image share (server-reference §9.2 steps 10-16, §9.3 steps 3-6):
 * from a list of existing files, make the new version tarball, the deltas from each delta
 * base, and publish it all in one commit (publish.ts).
 *
 * Delta rule, per file of the new full image and per base: a file the base already ships
 * under the same URL is left out (unless it is a keyring, which always ships); otherwise the
 * source is the base's first file whose name starts with the file's prefix (the reference's
 * `startswith`), and generate_delta makes the delta (for version/keyring/boot pairs: the
 * whole file); with no source, the whole file. The exact-URL check comes first, so an
 * unchanged file is never diffed against a different file that happens to share a prefix.
 * For tag-image's usual base (the tagged version itself) this leaves exactly the version and
 * keyring files, as the reference did; for any other base it makes real deltas, where the
 * reference shipped the same two files and left devices with content they never received.
 */
import { statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/types.js";
import { SiError } from "../errors.js";
import { generateDelta, generateFile, type GeneratorContext } from "../generators/index.js";
import { deltaSource } from "../importer/plan.js";
import { channelConfigOf } from "./tools.js";
import type { Logger } from "../io/log.js";
import type { FileEntry, Image } from "../model/index-doc.js";
import { basenameOf, filePrefix, sidecarPath, versionTarballName } from "../model/naming.js";
import { expandPath, pyRealpath, type ImageSpec } from "../tree/index.js";
import type { TreeOptions } from "../tree/context.js";
import { exists } from "../tree/paths.js";
import { publishImages } from "./publish.js";

export interface BuildRequest {
  channel: string;
  device: string;
  /** The device directory (where version-N.tar.xz goes). */
  deviceDir: string;
  /** The device's images before this change. */
  images: readonly Image[];
  version: number;
  /** Real paths of the image's files, without a version tarball. */
  files: string[];
  /** version_detail items without `version=` (the version generator appends it). */
  versionDetail: string[];
  bases: readonly Image[];
  phased: number;
  fullcount: number;
  /** The index entries the files come from: their checksums are reused (see seedChecksums). */
  sourceEntries?: readonly FileEntry[];
}

export interface BuiltImage {
  channel: string;
  device: string;
  version: number;
  version_detail: string;
  /** URL paths of the full image's files, in order. */
  files: string[];
  deltas: { base: number; files: string[] }[];
  phased: number;
  /** Versions of the images the expiry removed. */
  expired: { type: string; version: number; base?: number }[];
}

/**
 * An unreferenced `version-N.tar.xz` in the device directory is left over from an image
 * that was removed or never published; the version generator would reuse it, with its old
 * tag and channel. It is an orphan (cleanup would delete it), so it goes first.
 */
async function dropStaleVersionFile(config: Config, req: BuildRequest, log: Logger): Promise<void> {
  const path = pyRealpath(join(req.deviceDir, versionTarballName(req.version)));
  if (!exists(path)) return;
  const url = expandPath(path, config.publish_path).url;
  if (req.images.some((img) => img.files.some((f) => f.path === url))) return;
  log.info(`removing stale ${url} (no image references it)`);
  const side = sidecarPath(path);
  for (const p of [path, `${path}.asc`, side, `${side}.asc`]) await rm(p, { force: true });
}

/**
 * Pool files never change once published (§8.3), so the checksums the source index already
 * holds are reused instead of reading gigabytes again; a size that differs on disk means the
 * entry cannot be trusted, and that file is hashed.
 */
function seedChecksums(gctx: GeneratorContext, entries: readonly FileEntry[]): void {
  for (const e of entries) {
    const path = pyRealpath(`${gctx.config.publish_path}/${e.path}`);
    try {
      if (statSync(path).size === e.size && /^[0-9a-f]{64}$/.test(e.checksum))
        gctx.checksums.set(path, { sha256: e.checksum, size: e.size });
    } catch {
      // missing: create_image reports it
    }
  }
}

async function deltaFiles(gctx: GeneratorContext, channel: string, full: string[], base: Image, log: Logger): Promise<string[]> {
  const pub = gctx.config.publish_path;
  const baseUrls = new Set(base.files.map((f) => f.path));
  // The sources' digests, so their stored catalogues are checked without hashing them.
  seedChecksums(gctx, base.files);
  const out: string[] = [];
  for (const path of full) {
    const { url } = expandPath(path, pub);
    const keyring = basenameOf(url).includes("keyring-");
    if (baseUrls.has(url) && !keyring) continue;
    const src = baseUrls.has(url) ? url : deltaSource(base, filePrefix(url));
    if (!src) {
      out.push(path);
      continue;
    }
    const srcAbs = pyRealpath(`${pub}/${src}`);
    if (srcAbs === path && !keyring) continue;
    log.info(`delta from version ${base.version} for ${basenameOf(url)}`);
    // The destination channel's mtime policy: devices of that channel apply the delta.
    out.push(await generateDelta(gctx, srcAbs, path, { mtime: channelConfigOf(gctx.config, channel).delta_mtime }));
  }
  return out;
}

export async function buildAndPublish(
  config: Config,
  gctx: GeneratorContext,
  treeOpts: TreeOptions,
  req: BuildRequest,
  log: Logger,
): Promise<BuiltImage> {
  if (req.files.length === 0) {
    throw new SiError(
      `Cannot create ${req.channel}/${req.device} version ${req.version}: the source image has no files besides its version tarball`,
    );
  }
  await dropStaleVersionFile(config, req, log);
  seedChecksums(gctx, req.sourceEntries ?? []);
  const env = {
    channel_name: req.channel,
    device_name: req.device,
    device: req.deviceDir,
    version: req.version,
    version_detail: [...req.versionDetail],
    new_files: [...req.files],
  };
  const versionPath = await generateFile(gctx, "version", [], env);
  if (versionPath === null)
    throw new SiError(`Cannot create ${req.channel}/${req.device} version ${req.version}: no version tarball was made`);
  const full = [...req.files, versionPath];
  const detail = env.version_detail.join(",");
  const deltas: { base: number; paths: string[] }[] = [];
  for (const base of req.bases) {
    if (base.version >= req.version) {
      // Only with --keep-version below the latest: a delta must lead upwards.
      log.warn(`no delta from version ${base.version}: it is not older than version ${req.version}`);
      continue;
    }
    deltas.push({ base: base.version, paths: await deltaFiles(gctx, req.channel, full, base, log) });
  }
  const images: ImageSpec[] = [
    { type: "full", version: req.version, description: detail, paths: full, versionDetail: detail },
    ...deltas.map((d) => ({
      type: "delta",
      version: req.version,
      description: detail,
      paths: d.paths,
      base: d.base,
      versionDetail: detail,
    })),
  ];
  const { expired } = await publishImages(config, treeOpts, {
    channel: req.channel,
    deviceDir: req.deviceDir,
    images,
    phased: req.phased,
    fullcount: req.fullcount,
    checksums: gctx.checksums,
  });
  const url = (p: string) => expandPath(p, config.publish_path).url;
  return {
    channel: req.channel,
    device: req.device,
    version: req.version,
    version_detail: detail,
    files: full.map(url),
    deltas: deltas.map((d) => ({ base: d.base, files: d.paths.map(url) })),
    phased: req.phased,
    expired: expired.map((i) => ({ type: i.type, version: i.version, ...(typeof i.base === "number" ? { base: i.base } : {}) })),
  };
}

/** `I: created rc/mako version 3 (full + 1 delta)` and friends. */
export function describeBuilt(b: BuiltImage): string[] {
  const d = b.deltas.length;
  const lines = [
    `I: created ${b.channel}/${b.device} version ${b.version} (full${d ? ` + ${d} delta${d > 1 ? "s" : ""} from ${b.deltas.map((x) => x.base).join(", ")}` : ""})`,
    `I: version_detail: ${b.version_detail}`,
  ];
  if (b.phased !== 100) lines.push(`I: phased percentage ${b.phased}%`);
  if (b.expired.length)
    lines.push(
      `I: expired ${b.expired.map((e) => (e.type === "delta" ? `delta ${e.base}→${e.version}` : `full ${e.version}`)).join(", ")}`,
    );
  return lines;
}
