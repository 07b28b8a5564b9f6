/**
 * `remote-system-image` (server-reference §5.4.9): import a file from another system-image
 * server: the first file whose prefix equals `prefix` in the remote's highest full image of
 * `<channel>/<device>`, stored at the same URL path here and signed with our image-signing key.
 *
 * Options: `device=` (the remote device), `keyring=<name>` (swap our `<name>` keyring into
 * the tarball's recovery image, §8.5), and `verify=<keyring.tar.xz>`: the remote's
 * channels.json, index.json and the file must each carry a valid signature by a key of that
 * keyring, and the file must match the index's checksum, or nothing is imported.
 */
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { repackDeviceTarballKeyring } from "../archive/recovery-keyring.js";
import { GeneratorError, errorMessage } from "../errors.js";
import type { JsonValue } from "../format/pyjson.js";
import { hashStream } from "../io/hashing.js";
import type { FileEntry } from "../model/index-doc.js";
import { basenameOf, filePrefix, sidecarPath, urlPathProblem } from "../model/naming.js";
import { publishedPathProblem } from "../model/published-path.js";
import { splitVersionDetail } from "../model/version-detail.js";
import type { PublicKeyInfo } from "../pgp/keys.js";
import { readKeyringTarball } from "../pgp/keyring.js";
import { verifyDetached, verifyFile } from "../pgp/verify.js";
import { assertInside, pyRealpath } from "../tree/paths.js";
import { optionsAt, requireArgs } from "./args.js";
import { exists, publishPoolFile, readSidecar, withPoolTemp } from "./pool.js";
import { checkOwner, checkedDetail, describeOrigin, makeOrigin, originOf, type OwnerClaim } from "./pool-owner.js";
import { fetchOpts, type Generator, type GeneratorContext } from "./types.js";
import { imageLimits } from "../config/types.js";

const TIMEOUT_MS = 5_000;

/** `<base>/<rel>` with exactly one `/` between (the reference's plain join gave `//`). */
export function joinUrl(base: string, rel: string): string {
  return `${base.replace(/\/+$/, "")}/${rel.replace(/^\/+/, "")}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function parseJsonObject(text: string, url: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new GeneratorError(`${url} is not valid JSON (${errorMessage(err)})`);
  }
  if (!isObject(v)) throw new GeneratorError(`${url} is not a JSON object`);
  return v;
}

/** The keys of the `verify=` keyring (relative paths are against base_path); an expired one is refused. */
async function loadTrusted(ctx: GeneratorContext, path: string): Promise<PublicKeyInfo[]> {
  const file = isAbsolute(path) ? path : resolve(ctx.config.base_path, path);
  const kr = await readKeyringTarball(file);
  if (kr.meta.expiry !== undefined && kr.meta.expiry * 1000 < ctx.clock().getTime()) {
    throw new GeneratorError(`verify keyring ${file} expired on ${new Date(kr.meta.expiry * 1000).toISOString()}`);
  }
  if (kr.keys.length === 0) throw new GeneratorError(`verify keyring ${file} holds no usable (RSA) key`);
  return kr.keys;
}

/**
 * Where an upstream file may land here: under /pool/, an xz tarball, not a delta name. The
 * path is the upstream's choice and we store the file at the same path (§5.4.9 step 6), so
 * without this an upstream could place `/<channel>/<device>/version-9.tar.xz` (reused later
 * by the version generator, channel.ini and all) or a delta the delta generator would reuse.
 */
function remotePlaceProblem(urlPath: string): string | undefined {
  if (!urlPath.startsWith("/pool/")) return "remote files are stored under /pool/ only";
  if (!urlPath.endsWith(".tar.xz")) return "it is not a .tar.xz file";
  if (basenameOf(urlPath).includes(".delta-")) return "it has a delta file name (pool/<a>.delta-<b>.tar.xz is made here)";
  return undefined;
}

/** The upstream sidecar's version_detail, grammar-checked (it reaches channel.ini: issue 13 #1). */
function upstreamDetail(sidecar: Record<string, unknown> | null, url: string): string | null {
  const v = sidecar?.version_detail;
  if (v === undefined || sidecar === null) return null;
  if (typeof v !== "string")
    throw new GeneratorError(`the upstream sidecar ${url}: version_detail is ${JSON.stringify(v)}, not a string`, "ValueError");
  const detail = checkedDetail(url, v, "the upstream sidecar");
  // tag= and version= are this server's (import-images, tag-image, the version generator):
  // an upstream item would add a second tag to channel.ini.
  const own = splitVersionDetail(detail).find((i) => /^(tag|version)=/.test(i));
  if (own)
    throw new GeneratorError(
      `the upstream sidecar ${url}: version_detail item ${JSON.stringify(own)} (key "${own.split("=")[0]}"): this server sets that key itself`,
      "ValueError",
    );
  return detail;
}

export const remoteSystemImage: Generator = async (ctx, args, env) => {
  requireArgs(args, ["base_url", "channel", "prefix"]);
  const [base, channel, prefix] = [args[0], args[1], args[2]];
  const opts = optionsAt(args, 3);
  const device = opts.device ?? env.device_name;
  const trusted = opts.verify !== undefined ? await loadTrusted(ctx, opts.verify) : null;
  if (!trusted) {
    // Every run: the upstream's signatures are not checked (dashboard and verify-tree show the
    // files as "unverified upstream" from the sidecar's origin.verified).
    ctx.log(
      `W: unverified upstream: remote-system-image ${base} ${channel}/${device} for ${env.channel_name}/${env.device_name} has no verify= keyring; its documents and files are imported unchecked`,
    );
  }
  const textOpts = fetchOpts(ctx, { connectTimeoutMs: TIMEOUT_MS, readTimeoutMs: TIMEOUT_MS });

  /** A remote document, its signature checked when `verify=` is set. */
  const fetchDoc = async (url: string): Promise<string> => {
    const text = await ctx.fetcher.text(url, textOpts);
    if (trusted) {
      const armored = await ctx.fetcher.text(`${url}.asc`, textOpts);
      await verifyDetached(Buffer.from(text, "utf8"), armored, trusted, { what: url });
    }
    return text;
  };

  const channelsUrl = joinUrl(base, "channels.json");
  const channels = parseJsonObject(await fetchDoc(channelsUrl), channelsUrl);
  const ch = channels[channel];
  if (!Object.hasOwn(channels, channel) || !isObject(ch)) throw new GeneratorError(`channel '${channel}' is not in ${channelsUrl}`);
  if (!isObject(ch.devices)) throw new GeneratorError(`channel '${channel}' of ${channelsUrl} has no devices`);
  const dev = ch.devices[device];
  if (!Object.hasOwn(ch.devices, device) || !isObject(dev))
    throw new GeneratorError(`device '${device}' is not in channel '${channel}' of ${channelsUrl}`);
  if (typeof dev.index !== "string") throw new GeneratorError(`device '${device}' of channel '${channel}' of ${channelsUrl} has no index`);

  const indexUrl = joinUrl(base, dev.index);
  const index = parseJsonObject(await fetchDoc(indexUrl), indexUrl);
  const images = Array.isArray(index.images) ? index.images.filter(isObject) : [];
  let full: Record<string, unknown> | undefined;
  for (const img of images) {
    if (img.type === "full" && typeof img.version === "number" && (!full || img.version > (full.version as number))) full = img;
  }
  if (!full) throw new GeneratorError(`${indexUrl} has no full image`);
  const files = (Array.isArray(full.files) ? full.files.filter(isObject) : []) as Partial<FileEntry>[];
  const file = files.find((f) => typeof f.path === "string" && filePrefix(f.path) === prefix);
  if (!file) throw new GeneratorError(`no file with prefix '${prefix}' in version ${String(full.version)} of ${indexUrl}`);
  const urlPath = file.path!;
  // Published paths are safe by construction (issue 13 #2): checked before anything is fetched.
  const problem = urlPathProblem(urlPath) ?? publishedPathProblem(urlPath) ?? remotePlaceProblem(urlPath);
  if (problem) throw new GeneratorError(`refusing remote file path ${JSON.stringify(urlPath)} from ${indexUrl}: ${problem}`, "ValueError");
  if (typeof file.checksum !== "string" || !/^[0-9a-f]{64}$/.test(file.checksum)) {
    throw new GeneratorError(`${indexUrl}: the checksum of ${urlPath} is ${JSON.stringify(file.checksum)}, not a SHA-256`, "ValueError");
  }
  const checksum = file.checksum;
  const fileUrl = joinUrl(base, urlPath);
  const claim: OwnerClaim = {
    origin: makeOrigin(env, "remote-system-image", {
      url: fileUrl,
      base,
      upstream_channel: channel,
      upstream_device: device,
      sha256: checksum,
      keyring: opts.keyring ?? "",
      verified: trusted !== null,
    }),
    // The same bytes from the same URL, with the same keyring swap: any channel may share it.
    identity: ["generator", "url", "sha256", "keyring"],
    legacy: () => false, // judged below by content
  };

  // Same URL path here as there (§5.4.9 step 6), never outside publish_path.
  const root = ctx.config.publish_path;
  assertInside(root, join(root, urlPath), "import");
  const local = pyRealpath(join(root, urlPath));
  if (exists(local)) {
    const sidecar = await readSidecar(local);
    const origin = originOf(sidecar);
    if (origin?.generator === "remote-system-image" || (origin && opts.keyring !== undefined)) checkOwner(local, sidecar, claim);
    else await checkForeign(ctx, local, sidecar, claim, indexUrl);
    // The reference appends nothing here [QUIRK]; the local sidecar keeps version_detail stable.
    const detail = sidecar?.version_detail;
    if (typeof detail === "string") env.version_detail.push(checkedDetail(local, detail));
    ctx.log(`I: reusing ${local}`);
    return local;
  }

  // The sidecar is optional: a missing or unverifiable one is left out, not an error; a
  // version_detail that breaks the grammar is (fetched first: nothing is written then).
  const sidecarUrl = joinUrl(base, sidecarPath(urlPath));
  let upstreamSidecar: Record<string, unknown> | null = null;
  try {
    upstreamSidecar = parseJsonObject(await fetchDoc(sidecarUrl), sidecarUrl);
  } catch (err) {
    ctx.log(`W: no sidecar for ${fileUrl}: ${errorMessage(err)}`);
  }
  const detail = upstreamDetail(upstreamSidecar, sidecarUrl);

  return withPoolTemp(ctx, async (dir) => {
    const tmp = join(dir, "download");
    const got = await ctx.fetcher.download(fileUrl, tmp, {
      ...fetchOpts(ctx, { connectTimeoutMs: TIMEOUT_MS, readTimeoutMs: TIMEOUT_MS }),
      expectArchive: true,
    });
    if (trusted) await verifyFile(tmp, await ctx.fetcher.text(`${fileUrl}.asc`, textOpts), trusted, { what: fileUrl });
    // Checked with or without verify=: the owner record names these bytes.
    if (got.sha256 !== checksum) throw new GeneratorError(`${fileUrl} has SHA-256 ${got.sha256}, but ${indexUrl} says ${checksum}`);
    if (opts.keyring !== undefined) {
      const name = opts.keyring;
      const kbase = join(ctx.config.gpg_keyring_path, name);
      const read = (p: string) =>
        readFile(p).catch((err: NodeJS.ErrnoException) => {
          throw new GeneratorError(`keyring=${name}: cannot read ${p} (${err.code ?? err.message})`);
        });
      const keyring = { name, tarball: await read(`${kbase}.tar.xz`), signature: await read(`${kbase}.tar.xz.asc`) };
      if (!(await repackDeviceTarballKeyring(tmp, keyring, device, { limits: imageLimits(ctx.config), label: fileUrl }))) {
        throw new GeneratorError(`keyring=${name}: ${fileUrl} has no partitions/recovery.img`);
      }
    }
    // The upstream's sidecar fields, plus our owner record (pool-owner.ts).
    const sidecar = { ...(upstreamSidecar ?? {}), origin: claim.origin } as Record<string, JsonValue>;
    await publishPoolFile(tmp, local, ctx, { sidecar });
    if (detail !== null) env.version_detail.push(detail);
    ctx.log(`I: wrote ${local} from ${fileUrl}`);
    return local;
  });
};

/**
 * A file at the upstream's path that another generator made (a server mirroring its own tree,
 * or a file both trees share) or whose sidecar has no owner record (made before owners, or by
 * the reference server): reused when its bytes are the upstream's (one streamed hash), or, for
 * a legacy file with keyring= (repacked, so the bytes differ by design), on trust with a warning.
 */
async function checkForeign(
  ctx: GeneratorContext,
  local: string,
  sidecar: Record<string, JsonValue> | null,
  claim: OwnerClaim,
  indexUrl: string,
): Promise<void> {
  const checksum = String(claim.origin.sha256);
  if (claim.origin.keyring !== "") {
    ctx.log(
      `W: reusing ${local}: its sidecar records no source (made before pool owners); with keyring= its bytes cannot be compared with ${indexUrl}`,
    );
    return;
  }
  const { sha256 } = await hashStream(createReadStream(local));
  if (sha256 !== checksum) {
    throw new GeneratorError(
      `pool file ${local} belongs to another source: it was ${describeOrigin(originOf(sidecar), sidecar)} and its SHA-256 ${sha256} is not the ${checksum} of ${indexUrl}; it is not reused (remove it if it is stale)`,
      "ValueError",
    );
  }
}
