/**
 * The cdimage generators (server-reference §5.4.2-§5.4.4): take the newest build of a
 * cdimage tree (`<path>/<version>/SHA256SUMS` + `<series>-preinstalled-<product>-<arch>*.tar.gz`)
 * and publish it as `pool/<prefix>-<hash>.tar.xz`, where hash is the SHA256SUMS entry of
 * the source. cdimage-ubuntu repacks the rootfs under `system/` (§5.4.2 step 7); custom
 * and device-raw are only recompressed (gunzip, then xz).
 *
 * Unlike the reference, the source's SHA-256 is checked against SHA256SUMS while it streams
 * (a half-synced cdimage mirror must not end up in the pool under the right name).
 */
import { createReadStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { repackRootfs } from "../archive/rootfs-repack.js";
import { GeneratorError } from "../errors.js";
import type { JsonValue } from "../format/pyjson.js";
import { compareCodePoints } from "../format/pyjson.js";
import { HashingStream } from "../io/hashing.js";
import { isDir } from "../tree/paths.js";
import { optionsAt, requireArgs } from "./args.js";
import { exists, poolPath, publishPoolFile, xzProducer } from "./pool.js";
import { checkedItem, makeOrigin, reuseOwned, type OwnerClaim } from "./pool-owner.js";
import type { Environment, Generator, GeneratorContext } from "./types.js";
import { imageLimits } from "../config/types.js";

interface Flavour {
  generator: "cdimage-ubuntu" | "cdimage-custom" | "cdimage-device-raw";
  /** Pool name prefix (§1.2). */
  prefix: string;
  /** version_detail key (§2.6). */
  detailKey: string;
  defaultProduct: string;
  /** Input name after `<series>-preinstalled-<product>-<arch>`. */
  suffix: string;
  /** Sidecar key stem: `<stem>_path`, `<stem>_checksum`. */
  stem: string;
  arch(device: string): string;
  /** §5.4.2 step 7 repack, or plain recompression. */
  repack: boolean;
  extraSidecar?(env: Environment): Record<string, JsonValue>;
}

function archFrom(map: Record<string, string>): (device: string) => string {
  return (device) => (Object.hasOwn(map, device) ? map[device] : "armhf");
}

const UBUNTU: Flavour = {
  generator: "cdimage-ubuntu",
  prefix: "ubuntu",
  detailKey: "ubuntu",
  defaultProduct: "touch",
  suffix: ".tar.gz",
  stem: "rootfs",
  repack: true,
  arch: archFrom({
    generic_x86: "i386",
    generic_i386: "i386",
    generic_amd64: "amd64",
    azure_amd64: "amd64",
    plano: "amd64",
    generic_arm64: "arm64",
    frieza_arm64: "arm64",
  }),
};

const CUSTOM: Flavour = {
  generator: "cdimage-custom",
  prefix: "custom",
  detailKey: "custom",
  defaultProduct: "touch",
  suffix: ".custom.tar.gz",
  stem: "custom",
  repack: false,
  arch: archFrom({ generic_x86: "i386", generic_i386: "i386", generic_amd64: "amd64", generic_arm64: "arm64", frieza_arm64: "arm64" }),
};

const DEVICE_RAW: Flavour = {
  generator: "cdimage-device-raw",
  prefix: "device",
  detailKey: "raw-device",
  defaultProduct: "core",
  suffix: ".device.tar.gz",
  stem: "raw_device",
  repack: false,
  arch: archFrom({
    generic_x86: "i386",
    generic_i386: "i386",
    generic_amd64: "amd64",
    azure_amd64: "amd64.azure",
    plano: "amd64.plano",
    raspi2_armhf: "armhf.raspi2",
    generic_arm64: "arm64",
  }),
  extraSidecar: (env) => ({ device: env.device_name || "none" }),
};

/** §5.3 list_versions: entries except `pending` and `current`, newest (string order) first. */
export async function listVersions(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => n !== "pending" && n !== "current");
  return names.sort((a, b) => compareCodePoints(b, a));
}

/** §5.3: the first token of the first stripped SHA256SUMS line ending with `name`. */
export function sha256sumsLookup(text: string, name: string): string | null {
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.endsWith(name)) return line.split(/\s+/)[0] ?? null;
  }
  return null;
}

interface Candidate {
  version: string;
  input: string;
  hash: string;
}

/** The newest qualifying build; the error lists why each version was skipped. */
async function pickVersion(root: string, file: string, onlyGood: boolean): Promise<Candidate> {
  if (!isDir(root)) throw new GeneratorError(`cdimage path ${root} is not a directory`);
  const skipped: string[] = [];
  for (const version of await listVersions(root)) {
    const dir = join(root, version);
    const sums = await readFile(join(dir, "SHA256SUMS"), "utf8").catch(() => null);
    if (sums === null) {
      skipped.push(`${version}: no SHA256SUMS`);
      continue;
    }
    const input = join(dir, file);
    if (!exists(input)) {
      skipped.push(`${version}: no ${file}`);
      continue;
    }
    if (onlyGood && !exists(join(dir, ".marked_good"))) {
      skipped.push(`${version}: not marked good`);
      continue;
    }
    const hash = sha256sumsLookup(sums, file);
    if (!hash) {
      skipped.push(`${version}: ${file} not in SHA256SUMS`);
      continue;
    }
    return { version, input, hash };
  }
  const why = skipped.length ? ` (${skipped.join("; ")})` : " (it has no versions)";
  throw new GeneratorError(`no version of ${root} qualifies for ${file}${onlyGood ? " with import=good" : ""}${why}`);
}

function cdimageGenerator(f: Flavour): Generator {
  return async (ctx: GeneratorContext, args, env) => {
    requireArgs(args, ["cdimage_path", "series"]);
    const [root, series] = [args[0], args[1]];
    const opts = optionsAt(args, 2);
    const product = opts.product ?? f.defaultProduct;
    const importMode = opts.import ?? "any";
    if (importMode !== "any" && importMode !== "good") throw new GeneratorError(`invalid import=${importMode} (expected any or good)`);
    const file = `${series}-preinstalled-${product}-${f.arch(env.device_name)}${f.suffix}`;
    const { version, input, hash } = await pickVersion(root, file, importMode === "good");

    // The version is a directory name of the cdimage tree: it reaches channel.ini (issue 13 #1).
    const detail = checkedItem(join(root, version), f.detailKey, version);
    const path = poolPath(ctx, `${f.prefix}-${hash}.tar.xz`);
    // Content-addressed: the same generator kind and source checksum own the name.
    const claim: OwnerClaim = {
      origin: makeOrigin(env, f.generator, { source: input, checksum: hash }),
      identity: ["generator", "checksum"],
      legacy: (s) => s.generator === f.generator && s[`${f.stem}_checksum`] === hash,
    };
    if (await reuseOwned(ctx, env, path, detail, claim)) return path;

    const source = new HashingStream();
    const reading = pipeline(createReadStream(input), source);
    const checkHash = async () => {
      await reading;
      if (source.sha256 !== hash) throw new GeneratorError(`${input} has SHA-256 ${source.sha256}, but SHA256SUMS says ${hash}`);
    };
    const producer = f.repack
      ? async (out: Writable) => {
          await repackRootfs(source, out, {
            product,
            now: ctx.clock(),
            xzLevel: ctx.config.xz_level,
            limits: imageLimits(ctx.config),
            label: input,
          });
          await checkHash();
        }
      : xzProducer(ctx, async (xz) => {
          await pipeline(source, createGunzip(), xz);
          await checkHash();
        });
    try {
      await publishPoolFile(producer, path, ctx, {
        sidecar: {
          generator: f.generator,
          version,
          version_detail: detail,
          series,
          [`${f.stem}_path`]: input,
          [`${f.stem}_checksum`]: hash,
          ...f.extraSidecar?.(env),
        },
      });
    } finally {
      source.destroy();
      await reading.catch(() => {});
    }
    env.version_detail.push(detail);
    ctx.log(`I: wrote ${path} from ${input}`);
    return path;
  };
}

export const cdimageUbuntu = cdimageGenerator(UBUNTU);
export const cdimageCustom = cdimageGenerator(CUSTOM);
export const cdimageDeviceRaw = cdimageGenerator(DEVICE_RAW);
