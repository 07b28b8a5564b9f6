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
import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { repackDeviceTarballKeyring } from "../archive/recovery-keyring.js";
import { GeneratorError, errorMessage } from "../errors.js";
import type { FileEntry } from "../model/index-doc.js";
import { filePrefix, sidecarPath, urlPathProblem } from "../model/naming.js";
import type { PublicKeyInfo } from "../pgp/keys.js";
import { readKeyringTarball } from "../pgp/keyring.js";
import { verifyDetached, verifyFile } from "../pgp/verify.js";
import { assertInside, pyRealpath } from "../tree/paths.js";
import { optionsAt, requireArgs } from "./args.js";
import { exists, publishPoolFile, sidecarVersionDetail, withPoolTemp } from "./pool.js";
import { fetchOpts, type Generator, type GeneratorContext } from "./types.js";

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

export const remoteSystemImage: Generator = async (ctx, args, env) => {
  requireArgs(args, ["base_url", "channel", "prefix"]);
  const [base, channel, prefix] = [args[0]!, args[1]!, args[2]!];
  const opts = optionsAt(args, 3);
  const device = opts.device ?? env.device_name;
  const trusted = opts.verify !== undefined ? await loadTrusted(ctx, opts.verify) : null;
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
  if (!Object.hasOwn(ch.devices, device) || !isObject(dev)) throw new GeneratorError(`device '${device}' is not in channel '${channel}' of ${channelsUrl}`);
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
  const problem = urlPathProblem(urlPath);
  if (problem) throw new GeneratorError(`refusing remote file path ${JSON.stringify(urlPath)}: ${problem}`);

  // Same URL path here as there (§5.4.9 step 6), never outside publish_path.
  const root = ctx.config.publish_path;
  assertInside(root, join(root, urlPath), "import");
  const local = pyRealpath(join(root, urlPath));
  if (exists(local)) {
    // The reference appends nothing here [QUIRK]; the local sidecar keeps version_detail stable.
    const detail = await sidecarVersionDetail(local);
    if (detail !== null) env.version_detail.push(detail);
    ctx.log(`I: reusing ${local}`);
    return local;
  }

  const fileUrl = joinUrl(base, urlPath);
  return withPoolTemp(ctx, async (dir) => {
    const tmp = join(dir, "download");
    const got = await ctx.fetcher.download(fileUrl, tmp, { ...fetchOpts(ctx, { connectTimeoutMs: TIMEOUT_MS, readTimeoutMs: TIMEOUT_MS }), expectArchive: true });
    if (trusted) {
      await verifyFile(tmp, await ctx.fetcher.text(`${fileUrl}.asc`, textOpts), trusted, { what: fileUrl });
      if (got.sha256 !== file.checksum) {
        throw new GeneratorError(`${fileUrl} has SHA-256 ${got.sha256}, but ${indexUrl} says ${String(file.checksum)}`);
      }
    }
    if (opts.keyring !== undefined) {
      const name = opts.keyring;
      const kbase = join(ctx.config.gpg_keyring_path, name);
      const read = (p: string) =>
        readFile(p).catch((err: NodeJS.ErrnoException) => {
          throw new GeneratorError(`keyring=${name}: cannot read ${p} (${err.code ?? err.message})`);
        });
      const keyring = { name, tarball: await read(`${kbase}.tar.xz`), signature: await read(`${kbase}.tar.xz.asc`) };
      if (!(await repackDeviceTarballKeyring(tmp, keyring, device))) {
        throw new GeneratorError(`keyring=${name}: ${fileUrl} has no partitions/recovery.img`);
      }
    }
    // The sidecar is optional: a missing or unverifiable one is left out, not an error.
    const sidecarUrl = joinUrl(base, sidecarPath(urlPath));
    let sidecar: string | undefined;
    try {
      const text = await fetchDoc(sidecarUrl);
      parseJsonObject(text, sidecarUrl);
      sidecar = text;
    } catch (err) {
      ctx.log(`W: no sidecar for ${fileUrl}: ${errorMessage(err)}`);
    }
    await publishPoolFile(tmp, local, ctx, { sidecar });
    if (sidecar !== undefined) {
      const detail = JSON.parse(sidecar).version_detail as unknown;
      if (typeof detail === "string") env.version_detail.push(detail);
    }
    ctx.log(`I: wrote ${local} from ${fileUrl}`);
    return local;
  });
};
