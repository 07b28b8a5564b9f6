/**
 * `version` (server-reference §5.4.1): `<channel>/<device>/version-<N>.tar.xz`, the tarball
 * that stamps build_number and channel.ini (client-protocol §8.4), plus `version-N.json`.
 * Must come after the content generators: with no new file there is no new version.
 */
import { mkdir, rename, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { versionTarballName } from "../model/naming.js";
import { pyRealpath, writeVersionSidecar, writeVersionTarball } from "../tree/index.js";
import { exists } from "./pool.js";
import type { Generator } from "./types.js";

export const version: Generator = async (ctx, _args, env) => {
  // Nothing changed: no version bump, and the image is cancelled (§5.6).
  if (env.new_files.length === 0) return null;
  const path = pyRealpath(join(env.device, versionTarballName(env.version)));
  // Appended even when the file already exists (§5.4.1 step 3).
  env.version_detail.push(`version=${env.version}`);
  if (exists(path)) {
    ctx.log(`I: reusing ${path}`);
    return path;
  }
  const versionDetail = env.version_detail.join(",");
  await mkdir(dirname(path), { recursive: true });
  const written = await writeVersionTarball(
    path,
    ctx.config,
    { channel: env.channel_name, device: env.device_name, version: env.version, versionDetail, now: ctx.clock() },
    { signer: ctx.signer, codec: ctx.codec, level: ctx.config.xz_level, install: false },
  );
  try {
    // Sidecar first, the tarball last: its existence means the set is complete.
    await writeVersionSidecar(
      path,
      { version: env.version, channel: env.channel_name, device: env.device_name, versionDetail },
      ctx.signer,
    );
    await rename(written.sigTmp!, `${path}.asc`);
    await rename(written.tmp!, path);
  } catch (err) {
    await unlink(written.tmp!).catch(() => {});
    await unlink(written.sigTmp!).catch(() => {});
    throw err;
  }
  ctx.checksums.set(path, { sha256: written.sha256, size: written.size });
  ctx.log(`I: wrote ${path}`);
  return path;
};
