/**
 * copy-image (server-reference §9.2): publish an existing full image of one channel as a
 * new image of another (promotion: devel → rc → stable). Pool files are shared, not
 * copied; only the version tarball is new, saying the destination channel and version.
 *
 * Differences from the reference: `--keep-version` needs `--version`; the phased percentage
 * is checked before anything is made, and applied in the same commit as the image (never
 * briefly at 100 %); a kept version below the latest may not be phased (the reference
 * created the image, then crashed).
 */
import type { Image } from "../model/index-doc.js";
import { latestFull } from "../importer/plan.js";
import { basenameOf } from "../model/naming.js";
import { setTagOnVersionDetail, splitVersionDetail } from "../model/version-detail.js";
import { UsageError } from "../errors.js";
import { buildAndPublish, describeBuilt, type BuiltImage } from "./build-image.js";
import { generatorContext, lockOptions, resolve, type AdminContext } from "./context.js";
import { finish } from "./finish.js";
import { refuseAlias, refuseCommaTag, refuseDeviceRedirect, refuseRedirect, requireChannel, requireDeviceIn } from "./guards.js";
import { withLock } from "./lock.js";
import { DEFAULT_PUSH_URL, pushBody, pushNotify } from "./push.js";
import { channelConfigOf, extractFilesAndVersion, getRequiredDeltas } from "./tools.js";

export interface CopyImageRequest {
  source: string;
  destination: string;
  device: string;
  /** `-r`: source version (0/absent = the latest). */
  version?: number;
  /** `-o`: subtracted from the source version. */
  offset?: number;
  /** `-k`: the destination version is `version`. */
  keepVersion?: boolean;
  /** `-p` (default 100). */
  phased?: number;
  /** `-t`: replaces the tags of the version_detail. */
  tag?: string;
  /** `-q`: notify the push service. */
  push?: boolean;
  pushUrl?: string;
}

export interface CopyImageResult extends BuiltImage {
  source: { channel: string; device: string; version: number };
  pushed?: boolean;
  removed: string[];
}

const maxVersion = (images: readonly Image[]) => images.reduce((m, i) => Math.max(m, i.version), 0);

/** Checks that need no tree: refused before the lock is even taken. */
export function checkCopyArguments(req: CopyImageRequest): void {
  if (req.keepVersion && !req.version) throw new UsageError("argument -k/--keep-version: needs -r/--version N (the version to keep)");
  const p = req.phased ?? 100;
  if (!Number.isInteger(p) || p < 0 || p > 100)
    throw new UsageError(`Invalid phased percentage: ${p} (it must be an integer from 0 to 100)`);
}

export async function copyImage(actx: AdminContext, req: CopyImageRequest, now: () => Date = () => new Date()): Promise<CopyImageResult> {
  checkCopyArguments(req);
  const r = resolve(actx);
  const { config, tree, log } = r;
  const { source, destination: dest, device } = req;
  const phased = req.phased ?? 100;
  return withLock(config.state_path, lockOptions(r, "copy image"), async () => {
    const doc = await tree.listChannels();
    requireChannel(doc, source, "Invalid source channel");
    requireChannel(doc, dest, "Invalid destination channel");
    requireDeviceIn(doc, source, device, "Invalid device for source channel");
    requireDeviceIn(doc, dest, device, "Invalid device for destination channel");
    refuseAlias(doc, source, "Source channel is an alias.");
    refuseAlias(doc, dest, "Destination channel is an alias.");
    refuseRedirect(doc, source, "Source channel is a redirect.");
    refuseRedirect(doc, dest, "Destination channel is a redirect.");
    refuseDeviceRedirect(doc, source, device, "Source");
    refuseDeviceRedirect(doc, dest, device, "Destination");
    refuseCommaTag(req.tag);

    const srcDev = await tree.getDevice(source, device);
    const dstDev = await tree.getDevice(dest, device);
    const srcImages = await srcDev.listImages();
    const dstImages = await dstDev.listImages();
    if (req.keepVersion && dstImages.some((i) => i.version === req.version)) {
      throw new UsageError(`Version number is already used: ${req.version}`);
    }

    const newVersion = req.keepVersion ? req.version! : maxVersion(dstImages) + 1;
    if (phased !== 100 && newVersion < maxVersion(dstImages)) {
      throw new UsageError(
        `Cannot phase version ${newVersion} of ${dest}/${device} at ${phased}%: only the latest version can be phased, and ${maxVersion(dstImages)} is newer`,
      );
    }
    let srcVersion = req.version ? req.version : srcImages.length ? maxVersion(srcImages) : 1;
    if (req.offset) srcVersion -= req.offset;
    const srcImage = srcImages.find((i) => i.type === "full" && i.version === srcVersion);
    if (!srcImage) throw new UsageError(`Can't find version: ${srcVersion}`);

    // The same content as the destination's latest full image: nothing to copy.
    const names = (img: Image | undefined) => (img?.files ?? []).map((f) => basenameOf(f.path)).filter((n) => !n.startsWith("version-"));
    if (JSON.stringify(names(srcImage)) === JSON.stringify(names(latestFull(dstImages)))) {
      throw new UsageError("Source image is already latest full in destination channel.");
    }

    const bases = await getRequiredDeltas(config, tree, dest, device, { channels: doc, warn: (m) => log.warn(m) });
    const files: string[] = [];
    const fromSidecar = await extractFilesAndVersion(config, srcImage.files, srcVersion, files, (p) => log.debug(`source file ${p}`));
    // An image made by hand may have no version tarball sidecar: its index entry still knows.
    const oldDetail = fromSidecar || (srcImage.version_detail ?? "");
    log.info(`copying ${source}/${device} version ${srcVersion} (${oldDetail || "no version_detail"}) to ${dest} version ${newVersion}`);
    const detail = splitVersionDetail(oldDetail).filter((i) => !i.startsWith("version="));
    if (req.tag !== undefined) setTagOnVersionDetail(detail, req.tag);

    const built = await buildAndPublish(
      config,
      generatorContext(r, actx.clock),
      r.treeOpts,
      {
        channel: dest,
        device,
        deviceDir: dstDev.path,
        images: dstImages,
        version: newVersion,
        files,
        versionDetail: detail,
        bases,
        phased,
        sourceEntries: srcImage.files,
        fullcount: channelConfigOf(config, dest).fullcount,
      },
      log,
    );
    const result: CopyImageResult = { ...built, source: { channel: source, device, version: srcVersion }, removed: [] };
    if (req.push) result.pushed = await pushNotify(req.pushUrl ?? DEFAULT_PUSH_URL, pushBody(dest, device, newVersion, now()), log);
    result.removed = (await finish(config, tree, { log, runMirror: r.runMirror })).removed;
    return result;
  });
}

export function describeCopy(r: CopyImageResult): string[] {
  const lines = describeBuilt(r);
  lines[0] += ` from ${r.source.channel}/${r.source.device} version ${r.source.version}`;
  if (r.pushed !== undefined) lines.push(r.pushed ? "I: push notification sent" : "W: push notification failed (see the log)");
  if (r.removed.length) lines.push(`I: removed ${r.removed.length} orphaned file${r.removed.length > 1 ? "s" : ""}`);
  return lines;
}
