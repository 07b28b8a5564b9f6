/**
 * `si rollout start|pause|resume|abort|status` (issue 17), also used by the dashboard's
 * buttons. Each takes the global lock like any admin command, so a tick (which also holds
 * it) never raises a rollout between a pause and its answer.
 *
 * start: the image is set to the first step's percentage in one signed commit (recorded in
 *   the history, trigger `rollout`). It never lowers a percentage: an image already offered
 *   to more devices than the first step would be taken from devices that saw it.
 * abort: phased-percentage 0, the reference's way to pull an image (client-protocol §6.3:
 *   0 = no device takes it).
 */
import { lockOptions, resolve } from "../admin/context.js";
import { withLock } from "../admin/lock.js";
import { setPhasedLocked } from "../admin/phased.js";
import type { RolloutStep } from "../config/types.js";
import { SiError } from "../errors.js";
import { ROLLOUT_DEFAULTS } from "../model/rollout-steps.js";
import { RolloutStore, type Rollout } from "../state/rollouts.js";
import { currentPercentage } from "./model.js";
import { logChange, newestVersion, recordChange, type RolloutContext } from "./record.js";

export interface StartRequest {
  channel: string;
  device: string;
  version: number;
  /** Default: the channel's `rollout`. */
  steps?: RolloutStep[];
  floor?: number;
  graceHours?: number;
  minDownloads?: number;
}

const clockOf = (ctx: RolloutContext) => ctx.now ?? (() => new Date());

export async function startRollout(ctx: RolloutContext, req: StartRequest): Promise<Rollout> {
  const r = resolve(ctx);
  const { config } = r;
  const { channel, device, version } = req;
  const conf = config.channels.get(channel);
  const what = `Cannot start a rollout of ${channel}/${device} version ${version}`;
  const steps = req.steps ?? conf?.rollout;
  if (!steps) throw new SiError(`${what}: no --steps given and channel ${channel} has no 'rollout' in ${config.path}`);
  return withLock(config.state_path, lockOptions(r, "start the rollout"), async () => {
    const open = RolloutStore.with(config.state_path, (s) => s.latest(channel, device));
    if (open && open.version === version && (open.state === "active" || open.state === "paused"))
      throw new SiError(`${what}: it already has one (${open.state}; use si rollout resume or abort)`);
    const now = clockOf(ctx)();
    const first = steps[0].percentage;
    const res = await setPhasedLocked(r, { channel, device, version, percentage: first }, { atLeast: true });
    if (res.percentage > first) {
      throw new SiError(
        `${what}: it is already offered to ${res.previous}% of devices, more than the first step (${first}%); ` +
          `lowering it would take it from devices that already saw it (pull it first with si set-phased-percentage ${channel} ${device} ${version} 0)`,
      );
    }
    const change = { channel, device, version, from: res.previous, to: res.percentage };
    if (res.previous !== res.percentage) {
      recordChange(config.state_path, change, now, clockOf(ctx)());
      logChange(r.log, change, "rollout started");
    }
    return RolloutStore.with(config.state_path, (s) =>
      s.start({
        channel,
        device,
        version,
        steps,
        startedAt: now,
        floor: req.floor ?? conf?.rollout_floor ?? ROLLOUT_DEFAULTS.rollout_floor,
        graceHours: req.graceHours ?? conf?.rollout_grace_hours ?? ROLLOUT_DEFAULTS.rollout_grace_hours,
        minDownloads: req.minDownloads ?? conf?.rollout_min_downloads ?? ROLLOUT_DEFAULTS.rollout_min_downloads,
      }),
    );
  });
}

function openRollout(store: RolloutStore, channel: string, device: string, verb: string): Rollout {
  const r = store.latest(channel, device);
  if (!r) throw new SiError(`Cannot ${verb} the rollout of ${channel}/${device}: it has no rollout`);
  if (r.state !== "active" && r.state !== "paused")
    throw new SiError(`Cannot ${verb} the rollout of ${channel}/${device}: its rollout of version ${r.version} is ${r.state}`);
  return r;
}

export async function pauseRollout(ctx: RolloutContext, channel: string, device: string, reason = "paused by hand"): Promise<Rollout> {
  const r = resolve(ctx);
  const path = r.config.state_path;
  return withLock(path, lockOptions(r, "pause the rollout"), async () =>
    RolloutStore.with(path, (s) => {
      const ro = openRollout(s, channel, device, "pause");
      if (ro.state === "active") s.pause(ro.id, reason, clockOf(ctx)());
      return s.get(ro.id)!;
    }),
  );
}

export async function resumeRollout(ctx: RolloutContext, channel: string, device: string): Promise<Rollout> {
  const r = resolve(ctx);
  const path = r.config.state_path;
  return withLock(path, lockOptions(r, "resume the rollout"), async () =>
    RolloutStore.with(path, (s) => {
      const ro = openRollout(s, channel, device, "resume");
      if (ro.state === "paused") s.resume(ro.id, clockOf(ctx)());
      return s.get(ro.id)!;
    }),
  );
}

export async function abortRollout(ctx: RolloutContext, channel: string, device: string): Promise<Rollout> {
  const r = resolve(ctx);
  const path = r.config.state_path;
  return withLock(path, lockOptions(r, "abort the rollout"), async () => {
    const ro = RolloutStore.with(path, (s) => openRollout(s, channel, device, "abort"));
    const now = clockOf(ctx)();
    const newest = await newestVersion(r.tree, channel, device);
    if (newest !== ro.version) {
      const why = newest === null ? "the device has no images any more" : `version ${newest} is newer`;
      RolloutStore.with(path, (s) => s.end(ro.id, "superseded", why, now));
      throw new SiError(
        `Cannot abort the rollout of ${channel}/${device} version ${ro.version}: ${why} (only the newest version is phased)`,
      );
    }
    const res = await setPhasedLocked(r, { channel, device, version: ro.version, percentage: 0 });
    const change = { channel, device, version: ro.version, from: res.previous, to: 0 };
    recordChange(path, change, now, clockOf(ctx)());
    logChange(r.log, change, "rollout aborted");
    return RolloutStore.with(path, (s) => {
      s.end(ro.id, "aborted", `aborted by hand at ${currentPercentage(ro)}%: phased-percentage 0`, now);
      return s.get(ro.id)!;
    });
  });
}

/** The newest rollout of each channel/device, optionally of one channel (and device). */
export function rolloutStatus(statePath: string, channel?: string, device?: string): Rollout[] {
  return RolloutStore.with(statePath, (s) =>
    s.latestPerDevice().filter((r) => (channel === undefined || r.channel === channel) && (device === undefined || r.device === device)),
  );
}
