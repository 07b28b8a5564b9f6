/**
 * The cdimage rootfs repack (server-reference §5.4.2, and §5.4.7 for http-cdimage): a gzip'd
 * rootfs tarball streams through gunzip -> tar reader -> GNU tar writer -> xz, with
 *   - every member copied in order, except members named exactly `SWAP.swap` or `etc/mtab`;
 *   - every name prefixed with `system/`, hard-link targets too (they are archive paths),
 *     symlink targets unchanged;
 *   - the Ubuntu Touch / Core mount points appended at the end.
 * Nothing is buffered beyond one tar block and the codec windows.
 */
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { imageLimits, type ImageLimits } from "../config/types.js";
import { ArchiveError, errorMessage } from "../errors.js";
import { defaultCodec } from "../io/xz.js";
import { ImageRefusedError, TarInspector } from "./inspect/inspector.js";
import type { TarHeader } from "./tar/types.js";
import { GnuTarWriter } from "./tar/write.js";

export interface RepackOptions {
  /** cdimage product: `touch` and `pd` get the Android entries, `core` gets /writable. */
  product: string;
  /** http-cdimage (§5.4.7): Android entries whatever the product. */
  alwaysAndroid?: boolean;
  /** mtime of the appended entries (default: now). */
  now?: Date;
  /** xz preset (reference: 9). */
  xzLevel?: number;
  /**
   * Image limits for reading the rootfs (issue 13; default imageLimits({})). Device nodes
   * are let through here: the repacked image is inspected when published, where the policy
   * applies to the `system/` names devices extract.
   */
  limits?: ImageLimits;
  /** Names the rootfs in errors (a path or URL). */
  label?: string;
}

export interface RepackResult {
  /** Members copied from the rootfs. */
  copied: number;
  /** Members dropped (SWAP.swap, etc/mtab). */
  dropped: number;
  /** Uncompressed size of the repacked tar. */
  uncompressedBytes: number;
}

const DROPPED = new Set(["SWAP.swap", "etc/mtab"]);
const ANDROID_LINKS = ["cache", "data", "factory", "firmware", "persist", "system", "odm"];

/** The entries §5.4.2 appends after the rootfs, in order. Pure. */
export function appendedEntries(opts: RepackOptions): TarHeader[] {
  const mtime = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const root = { uid: 0, gid: 0, uname: "root", gname: "root", mtime, size: 0 };
  const dir = (name: string): TarHeader => ({ ...root, name, type: "directory", mode: 0o755 });
  const link = (name: string, linkname: string, mode = 0o755): TarHeader => ({ ...root, name, type: "symlink", mode, linkname });
  const out: TarHeader[] = [];
  if (opts.alwaysAndroid || opts.product === "touch" || opts.product === "pd") {
    out.push(dir("system/android"));
    for (const l of ANDROID_LINKS) out.push(link(`system/${l}`, `/android/${l}`));
    out.push(link("system/vendor", "/android/system/vendor"));
  }
  out.push(dir(opts.product === "core" ? "system/writable" : "system/userdata"));
  out.push(link("system/etc/mtab", "/proc/mounts", 0o444));
  out.push(dir("system/lib/modules"));
  return out;
}

/** `system/` + name; a root entry ("./" read as ".", "/" read as "") keeps a usable name. */
function prefixed(name: string): string {
  return name === "" ? "system" : `system/${name}`;
}

/** Repacks the gzip'd rootfs `input` into an xz-compressed GNU tar on `output` (ended). */
export async function repackRootfs(input: Readable, output: Writable, opts: RepackOptions): Promise<RepackResult> {
  const gunzip = createGunzip();
  const inspector = new TarInspector({
    file: opts.label ?? "rootfs",
    limits: { ...(opts.limits ?? imageLimits({})), allow_devices: true },
  });
  input.on("data", (chunk: Buffer) => (inspector.compressed += chunk.length));
  const xz = defaultCodec().compress({ level: opts.xzLevel ?? 9 });
  const feeding = pipeline(input, gunzip);
  const draining = pipeline(xz, output);
  const writer = new GnuTarWriter(xz);
  let copied = 0;
  let dropped = 0;
  try {
    const repack = async () => {
      for await (const { header, body } of inspector.entries(gunzip)) {
        if (DROPPED.has(header.name)) {
          dropped++;
          continue;
        }
        const out: TarHeader = { ...header, name: prefixed(header.name) };
        if (header.type === "link" && header.linkname !== undefined) out.linkname = prefixed(header.linkname);
        await writer.add(out, body);
        copied++;
      }
      for (const entry of appendedEntries(opts)) await writer.add(entry);
      await writer.finish();
    };
    await Promise.all([repack(), feeding, draining]);
  } catch (err) {
    gunzip.destroy();
    xz.destroy();
    await Promise.allSettled([feeding, draining]);
    // A refusal reads "Cannot repack rootfs tarball: member 'x': ...".
    const reason = errorMessage(err).replace(
      err instanceof ImageRefusedError ? /^Cannot publish image '[^']*': / : /^Cannot read tar archive: /,
      "",
    );
    throw new ArchiveError(`Cannot repack rootfs tarball${opts.label ? ` '${opts.label}'` : ""}: ${reason}`, "Exception", { cause: err });
  }
  return { copied, dropped, uncompressedBytes: writer.bytesWritten };
}
