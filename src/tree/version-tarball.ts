/**
 * Writes version tarballs (server-reference §5.5) and their `version-N.json` sidecars (§2.5).
 * GNU tar headers (the recovery's busybox tar chokes on pax: §11 2020-12, §13 #5), xz via the
 * shared codec, and the image-signing signature computed from the same bytes as they are
 * written: one pass, temporary sibling, fsync, rename.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GnuTarWriter, readTar, type TarHeader } from "../archive/tar/index.js";
import type { Config } from "../config/types.js";
import { TreeError } from "../errors.js";
import { dumpPyJson } from "../format/pyjson.js";
import { defaultCodec, type XzCodec } from "../io/xz.js";
import type { Signer } from "../pgp/signer.js";
import { sidecarPath } from "../model/naming.js";
import { MAX_TEXT, shown, textProblem } from "../model/version-detail.js";
import {
  DEFAULT_CHANNEL_PATH,
  versionMembers,
  versionSidecar,
  type ChannelIniInput,
  type VersionMember,
} from "../model/version-tarball.js";
import { fsyncDir, tempSibling, writeSignedFile, writeSynced } from "./commit.js";

export interface VersionTarballSpec {
  channel: string;
  device: string;
  /** Build number; a string is written as given (the reference tests use "1.2.3.4"). */
  version: number | string;
  versionDetail?: string | null;
  /** Set for alias copies: the channel the alias follows (§1.5, client-protocol §7). */
  channelTarget?: string | null;
  buildPath?: string;
  channelPath?: string;
  /** mtime of every member (default: now); must be after the epoch (LP #1558190). */
  now?: Date;
}

export type VersionConfig = Pick<Config, "public_fqdn" | "public_http_port" | "public_https_port"> & { path?: string; xz_level?: number };

/** channel.ini input from the config; the three public_* keys are required (§4.3). */
export function iniInput(config: VersionConfig, spec: VersionTarballSpec): ChannelIniInput {
  const missing = (["public_fqdn", "public_http_port", "public_https_port"] as const).filter(
    (k) => config[k] === undefined || config[k] === "",
  );
  if (missing.length) {
    throw new TreeError(
      `Cannot write the version tarball of ${spec.channel}/${spec.device} version ${spec.version}: ${missing.join(", ")} not set in [global] of ${config.path ?? "the config"}`,
      "Exception",
    );
  }
  return {
    fqdn: config.public_fqdn!,
    httpPort: config.public_http_port!,
    httpsPort: config.public_https_port!,
    channel: spec.channel,
    device: spec.device,
    version: spec.version,
    channelTarget: spec.channelTarget,
    versionDetail: spec.versionDetail,
  };
}

/**
 * channel.ini is line-based and devices load it as config.d/01_channel.ini (client-protocol
 * §2): a newline in any value is a new `[section]` or `base:` line (issue 13 #1). Whatever the
 * caller checked, the writer refuses control characters in every value and an overlong
 * version_detail. (The key=value grammar is enforced where items enter: the generators and
 * the tag helpers; the reference's own tests write "abcdef" and "tag=ü" through here.)
 */
export function checkIniInput(ini: ChannelIniInput, where: string): void {
  const values: [string, unknown][] = [
    ["base", ini.fqdn],
    ["http_port", ini.httpPort],
    ["https_port", ini.httpsPort],
    ["channel", ini.channel],
    ["device", ini.device],
    ["build_number", ini.version],
    ["channel_target", ini.channelTarget ?? ""],
    ["version_detail", ini.versionDetail ?? ""],
  ];
  for (const [key, v] of values) {
    const m = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/.exec(String(v));
    if (m)
      throw new TreeError(
        `Cannot write ${where}: the channel.ini value of ${key} has the control character ${shown(m[0])}: ${shown(String(v))}`,
        "ValueError",
      );
  }
  if (String(ini.versionDetail ?? "").length > MAX_TEXT)
    throw new TreeError(`Cannot write ${where}: version_detail is longer than ${MAX_TEXT} characters`, "ValueError");
}

function header(m: VersionMember, mtime: number): TarHeader {
  return {
    name: m.name,
    type: m.type,
    mode: m.mode,
    uid: 0,
    gid: 0,
    uname: "",
    gname: "",
    mtime,
    size: m.type === "file" ? m.content.length : 0,
    ...(m.type === "symlink" ? { linkname: m.linkname } : {}),
  };
}

/** Streams the uncompressed GNU tar to `out` and ends it. */
export async function writeVersionTar(out: Writable, config: VersionConfig, spec: VersionTarballSpec): Promise<void> {
  const ini = iniInput(config, spec);
  checkIniInput(ini, `the version tarball of ${spec.channel}/${spec.device} version ${spec.version}`);
  const members = versionMembers(ini, spec.buildPath, spec.channelPath);
  const mtime = Math.floor((spec.now ?? new Date()).getTime() / 1000);
  const tar = new GnuTarWriter(out);
  for (const m of members) await tar.add(header(m, mtime), m.type === "file" ? m.content : undefined);
  await tar.finish();
}

/** generate_version_tarball: the uncompressed tar at `path` (tests and tools). */
export async function writeVersionTarFile(path: string, config: VersionConfig, spec: VersionTarballSpec): Promise<void> {
  const out = createWriteStream(path, { flags: "wx" });
  const done = new Promise<void>((res, rej) => {
    out.on("close", res);
    out.on("error", rej);
  });
  await writeVersionTar(out, config, spec);
  await done;
}

export interface WrittenFile {
  /** Final path of the `.tar.xz`. */
  path: string;
  sha256: string;
  size: number;
  /** Set when not installed yet (`install: false`): temporaries to rename into place. */
  tmp?: string;
  sigTmp?: string;
}

export interface WriteOptions {
  signer: Signer;
  codec?: XzCodec;
  /** xz preset (default: config.xz_level, else 9). */
  level?: number;
  /** Rename into place (default true); false leaves temporaries for a transaction. */
  install?: boolean;
}

/**
 * `<dest>` = xz(version tar) and `<dest>.asc`, both written once through a temporary sibling.
 * Returns the checksum and size index entries need.
 */
export async function writeVersionTarball(
  dest: string,
  config: VersionConfig,
  spec: VersionTarballSpec,
  opts: WriteOptions,
): Promise<WrittenFile> {
  if (!dest.endsWith(".tar.xz")) throw new TreeError(`Cannot write version tarball ${dest}: the name must end in .tar.xz`, "ValueError");
  // Checked before any temporary exists (writeVersionTar checks again).
  checkIniInput(iniInput(config, spec), `version tarball ${dest} (${spec.channel}/${spec.device})`);
  const codec = opts.codec ?? defaultCodec();
  const tmp = tempSibling(dest);
  const sigTmp = tempSibling(`${dest}.asc`);
  const sig = await opts.signer.begin("image-signing");
  const hash = createHash("sha256");
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      sig.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const comp = codec.compress({ level: opts.level ?? config.xz_level ?? 9 });
  try {
    const piping = pipeline(comp, tap, createWriteStream(tmp, { flags: "wx", mode: 0o644 }));
    try {
      await writeVersionTar(comp, config, spec);
    } catch (err) {
      comp.destroy(err as Error);
      await piping.catch(() => {});
      throw err;
    }
    await piping;
    const fh = await open(tmp, "r");
    await fh.sync().finally(() => fh.close());
    await writeSynced(sigTmp, await sig.finish());
  } catch (err) {
    await unlink(tmp).catch(() => {});
    await unlink(sigTmp).catch(() => {});
    throw err;
  }
  const written: WrittenFile = { path: dest, sha256: hash.digest("hex"), size };
  if (opts.install === false) return { ...written, tmp, sigTmp };
  await rename(tmp, dest);
  await rename(sigTmp, `${dest}.asc`);
  await fsyncDir(dirname(dest));
  return written;
}

/**
 * generate_version_metadata (§2.5): `version-N.json` beside `tarPath`, signed. Not written for
 * alias copies (§1.5).
 */
export async function writeVersionSidecar(
  tarPath: string,
  info: { version: number; channel: string; device: string; versionDetail?: string | null },
  signer: Signer,
): Promise<string> {
  const path = sidecarPath(tarPath);
  const bad = textProblem(info.versionDetail ?? "");
  if (bad)
    throw new TreeError(`Cannot write ${path} (${info.channel}/${info.device}): version_detail ${bad.replace(/^it /, "")}`, "ValueError");
  await writeSignedFile(path, dumpPyJson(versionSidecar(info)), signer);
  return path;
}

/** The `key: value` lines of a version tarball's channel.ini, or null if it has none. */
export async function readVersionIni(
  path: string,
  opts: { codec?: XzCodec; channelPath?: string } = {},
): Promise<Record<string, string> | null> {
  const want = opts.channelPath ?? DEFAULT_CHANNEL_PATH;
  const raw = createReadStream(path);
  const input = raw.pipe((opts.codec ?? defaultCodec()).decompress());
  raw.on("error", (err) => input.destroy(err));
  try {
    for await (const entry of readTar(input)) {
      if (entry.header.name !== want || entry.header.type !== "file") {
        entry.body.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const c of entry.body) chunks.push(c as Buffer);
      const out: Record<string, string> = {};
      for (const line of Buffer.concat(chunks).toString("utf8").split("\n")) {
        const i = line.indexOf(": ");
        if (i > 0) out[line.slice(0, i)] = line.slice(i + 2);
      }
      return out;
    }
    return null;
  } finally {
    raw.destroy();
    input.destroy();
  }
}
