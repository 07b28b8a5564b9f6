/**
 * set-phased-percentage (server-reference §9.4): offer the latest image of a device to only
 * a share of the devices (client-protocol: the device's machine-id decides), then raise the
 * share step by step; 100 offers it to everyone.
 *
 * Differences from the reference: it runs without `-v` (§13 #8); it takes the global lock;
 * an unknown or non-latest version is a one-line error (exit 1), not a traceback; the
 * alias copies change in the same commit as the channel.
 */
import { join } from "node:path";
import { SiError, UsageError } from "../errors.js";
import { Runner } from "../tree/context.js";
import { opSetPhasedPercentage } from "../tree/image-ops.js";
import { opSyncAliases } from "../tree/ops-device.js";
import { lockOptions, resolve, type AdminContext, type Resolved } from "./context.js";
import { triggerMirrors } from "./finish.js";
import { refuseAlias, refuseDeviceRedirect, refuseRedirect, requireChannel, requireDeviceIn } from "./guards.js";
import { withLock } from "./lock.js";

export interface PhasedRequest {
  channel: string;
  device: string;
  version: number;
  percentage: number;
}

export interface PhasedResult extends PhasedRequest {
  previous: number;
}

export async function setPhased(actx: AdminContext, req: PhasedRequest): Promise<PhasedResult> {
  const r = resolve(actx);
  return withLock(r.config.state_path, lockOptions(r, "set the phased percentage"), () => setPhasedLocked(r, req));
}

/**
 * setPhased for a caller that already holds the global lock (a rollout tick, `si rollout`):
 * the same checks, one signed commit of the device index and its alias copies.
 * `opts.atLeast`: never lower the percentage (a rollout only raises it, so a device that saw
 * the image keeps seeing it: client-protocol §6.3); the result says what was kept.
 */
export async function setPhasedLocked(r: Resolved, req: PhasedRequest, opts: { atLeast?: boolean } = {}): Promise<PhasedResult> {
  const { config, tree, log } = r;
  const { channel, device, version } = req;
  let { percentage } = req;
  const doc = await tree.listChannels();
  requireChannel(doc, channel, "Invalid channel");
  requireDeviceIn(doc, channel, device, "Invalid device for source channel");
  if (!Number.isInteger(percentage) || percentage < 0 || percentage > 100) throw new UsageError(`Invalid value: ${percentage}`);
  refuseAlias(doc, channel, "Channel is an alias.");
  refuseRedirect(doc, channel, "Channel is a redirect.");
  refuseDeviceRedirect(doc, channel, device, "Target");

  const dev = await tree.getDevice(channel, device);
  const images = await dev.listImages();
  const what = `Cannot set the phased percentage of ${channel}/${device} version ${version}`;
  const own = images.filter((i) => i.version === version);
  if (own.length === 0) {
    const have = [...new Set(images.map((i) => i.version))].sort((a, b) => a - b);
    throw new SiError(`${what}: there is no such version (${have.length ? `versions: ${have.join(", ")}` : "the device has no images"})`);
  }
  const latest = Math.max(...images.map((i) => i.version));
  if (version !== latest) throw new SiError(`${what}: only the latest version (${latest}) can be phased`);
  const previous = own[0]["phased-percentage"] ?? 100;
  if (opts.atLeast && previous > percentage) percentage = previous;
  if (opts.atLeast && previous === percentage) return { ...req, percentage, previous };

  const runner = new Runner(Runner.context(config, config.publish_path, r.treeOpts), r.treeOpts);
  await runner.txn("set_phased_percentage", [channel, device, version, percentage], async (t) => {
    await opSetPhasedPercentage(t, join(dev.path, "index.json"), version, percentage);
    await opSyncAliases(t, channel);
  });
  log.info(`phased percentage of ${channel}/${device} version ${version}: ${previous}% → ${percentage}%`);
  await triggerMirrors(config, { log, runMirror: r.runMirror });
  return { ...req, percentage, previous };
}

export function describePhased(r: PhasedResult): string[] {
  if (r.previous === r.percentage) return [`I: ${r.channel}/${r.device} version ${r.version} was already at ${r.percentage}%`];
  return [`I: set phased percentage of ${r.channel}/${r.device} version ${r.version} to ${r.percentage}% (was ${r.previous}%)`];
}
