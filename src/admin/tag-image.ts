/**
 * tag-image (server-reference §9.3): re-publish the latest image N as N+1 with a new tag
 * (an OTA release name) and no content change. Devices on N get a delta holding only the
 * new version tarball (and the keyring).
 *
 * Difference from the reference (§13 #9): N's phased percentage is read before N+1 exists
 * and carried over, in the same commit; the reference read it after creating N+1 had
 * already cleared it, so N+1 always went out to 100 % of devices.
 */
import { getPhasedPercentage } from "../model/images.js";
import { setTagOnVersionDetail, splitVersionDetail } from "../model/version-detail.js";
import { UsageError } from "../errors.js";
import { buildAndPublish, describeBuilt, type BuiltImage } from "./build-image.js";
import { generatorContext, lockOptions, resolve, type AdminContext } from "./context.js";
import { finish } from "./finish.js";
import { refuseAlias, refuseCommaTag, refuseDeviceRedirect, refuseRedirect, requireChannel, requireDeviceIn } from "./guards.js";
import { withLock } from "./lock.js";
import { channelConfigOf, extractFilesAndVersion, getRequiredDeltas } from "./tools.js";

export interface TagImageRequest {
  channel: string;
  device: string;
  version: number;
  /** An empty tag removes the tags. */
  tag: string;
}

export interface TagImageResult extends BuiltImage {
  tagged: number;
  tag: string;
  removed: string[];
}

export async function tagImage(actx: AdminContext, req: TagImageRequest): Promise<TagImageResult> {
  const r = resolve(actx);
  const { config, tree, log } = r;
  const { channel, device, version, tag } = req;
  return withLock(config.state_path, lockOptions(r, "tag image"), async () => {
    const doc = await tree.listChannels();
    requireChannel(doc, channel, "Invalid channel");
    requireDeviceIn(doc, channel, device, "Invalid device for channel");
    refuseAlias(doc, channel, "Channel is an alias.");
    refuseRedirect(doc, channel, "Channel is a redirect.");
    refuseDeviceRedirect(doc, channel, device, "Target");
    refuseCommaTag(tag);

    const dev = await tree.getDevice(channel, device);
    const images = await dev.listImages();
    if (images.length === 0) throw new UsageError("No images in selected channel/device.");
    const latest = images.reduce((m, i) => Math.max(m, i.version), 0);
    if (version !== latest) throw new UsageError("You can only tag the latest image.");
    const image = images.find((i) => i.type === "full" && i.version === version);
    if (!image) throw new UsageError(`Can't find version: ${version}`);

    const newVersion = version + 1;
    // Read before N+1 exists: creating it clears N's value (§9.3 step 5, §13 #9).
    const phased = getPhasedPercentage({ global: {}, images }, version, dev.indexpath);
    const bases = await getRequiredDeltas(config, tree, channel, device, { channels: doc, warn: (m) => log.warn(m) });
    const files: string[] = [];
    const fromSidecar = await extractFilesAndVersion(config, image.files, version, files, (p) => log.debug(`image file ${p}`));
    // An image made by hand may have no version tarball sidecar: its index entry still knows.
    const oldDetail = fromSidecar || (image.version_detail ?? "");
    const detail = splitVersionDetail(oldDetail).filter((i) => !i.startsWith("version="));
    setTagOnVersionDetail(detail, tag);
    log.info(`tagging ${channel}/${device} version ${version} as ${tag ? `'${tag}'` : "untagged"}: version ${newVersion}`);

    const built = await buildAndPublish(
      config,
      generatorContext(r, actx.clock),
      r.treeOpts,
      {
        channel,
        device,
        deviceDir: dev.path,
        images,
        version: newVersion,
        files,
        versionDetail: detail,
        bases,
        phased,
        sourceEntries: image.files,
        fullcount: channelConfigOf(config, channel).fullcount,
      },
      log,
    );
    const { removed } = await finish(config, tree, { log, runMirror: r.runMirror });
    return { ...built, tagged: version, tag, removed };
  });
}

export function describeTag(r: TagImageResult): string[] {
  const lines = describeBuilt(r);
  lines[0] += r.tag ? `, tag ${r.tag} (was version ${r.tagged})` : `, tags cleared (was version ${r.tagged})`;
  if (r.removed.length) lines.push(`I: removed ${r.removed.length} orphaned file${r.removed.length > 1 ? "s" : ""}`);
  return lines;
}
