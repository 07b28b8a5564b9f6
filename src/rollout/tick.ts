/**
 * One rollout tick (issue 17): for every open rollout,
 *  - superseded when its image is no longer the device's newest version (phasing applies
 *    only to the newest, server-reference set_phased_percentage; and a device's phase is
 *    seeded with the newest version, client-protocol §6.3, so a new version reshuffles it);
 *  - paused when the pause rule trips (model.ts);
 *  - raised to the step now due, in one signed commit per device, recorded in the history
 *    with trigger `rollout`. A raise never lowers the percentage, and sets every image of
 *    the version (full and deltas) alike, so a device offered the image keeps it.
 *
 * Raises happen under the global lock, like admin commands; `lockWaitMs` 0 (the ticker in
 * `si serve`) skips the raises when an import or admin command holds it: the next tick does
 * them. Nothing else needs the lock, so a tick with nothing due never takes it.
 */
import { lockOptions, resolve, type Resolved } from "../admin/context.js";
import { acquireLock } from "../admin/lock.js";
import { setPhasedLocked } from "../admin/phased.js";
import { errorMessage, LockBusyError } from "../errors.js";
import { RolloutStore, type Rollout } from "../state/rollouts.js";
import { fleetCounts } from "./downloads.js";
import { dueStep, pauseReason } from "./model.js";
import { logChange, newestVersion, recordChange, type RolloutContext } from "./record.js";

export interface TickAction {
  channel: string;
  device: string;
  version: number;
  action: "raised" | "paused" | "superseded" | "failed";
  /** raised: the new percentage. */
  percentage?: number;
  from?: number;
  reason?: string;
}

export interface TickReport {
  at: Date;
  actions: TickAction[];
  /** Raises left for the next tick because the global lock was busy. */
  skipped: string | null;
}

const who = (r: Rollout) => ({ channel: r.channel, device: r.device, version: r.version });

export async function tickRollouts(ctx: RolloutContext): Promise<TickReport> {
  const r = resolve(ctx);
  const path = r.config.state_path;
  const now = (ctx.now ?? (() => new Date()))();
  const counts = ctx.counts ?? fleetCounts;
  const report: TickReport = { at: now, actions: [], skipped: null };
  const due: Rollout[] = [];
  for (const ro of RolloutStore.with(path, (s) => s.open())) {
    let newest: number | null;
    try {
      newest = await newestVersion(r.tree, ro.channel, ro.device);
    } catch (err) {
      // An unreadable index says nothing about the rollout: try again on the next tick.
      r.log.warn(`rollout of ${ro.channel}/${ro.device} version ${ro.version}: cannot read the device: ${errorMessage(err)}`);
      continue;
    }
    if (newest !== ro.version) {
      const reason = newest === null ? "the device has no images any more" : `version ${newest} is newer`;
      RolloutStore.with(path, (s) => s.end(ro.id, "superseded", reason, now));
      report.actions.push({ ...who(ro), action: "superseded", reason });
      continue;
    }
    if (ro.state !== "active") continue;
    const reason = pauseReason(ro, await counts(path, { ...who(ro), since: ro.stepStartedAt }), now);
    if (reason) {
      RolloutStore.with(path, (s) => s.pause(ro.id, reason, now));
      r.log.warn(`rollout of ${ro.channel}/${ro.device} version ${ro.version} paused: ${reason}`, { ...who(ro), trigger: "rollout" });
      report.actions.push({ ...who(ro), action: "paused", reason });
      continue;
    }
    if (dueStep(ro, now) > ro.step) due.push(ro);
  }
  if (due.length === 0) return report;

  let lock;
  try {
    lock = await acquireLock(path, { ...lockOptions(r, "raise the rollouts"), waitMs: ctx.lockWaitMs ?? 0 });
  } catch (err) {
    if (!(err instanceof LockBusyError)) throw err;
    report.skipped = "the global lock is busy (an import or an admin command): the raises wait for the next tick";
    r.log.info(`rollout tick: ${report.skipped}`, { trigger: "rollout" });
    return report;
  }
  try {
    for (const ro of due) {
      const action = await raise(r, ctx, ro, now);
      if (action) report.actions.push(action);
    }
  } finally {
    lock.release();
  }
  return report;
}

/** Raises one rollout to its due step, holding the lock (re-read: a pause may have come). */
async function raise(r: Resolved, ctx: RolloutContext, before: Rollout, now: Date): Promise<TickAction | null> {
  const path = r.config.state_path;
  const ro = RolloutStore.with(path, (s) => s.get(before.id));
  if (!ro || ro.state !== "active") return null;
  const step = dueStep(ro, now);
  if (step <= ro.step) return null;
  const target = ro.steps[step].percentage;
  try {
    const res = await setPhasedLocked(r, { ...who(ro), percentage: target }, { atLeast: true });
    const change = { ...who(ro), from: res.previous, to: res.percentage };
    if (res.previous !== res.percentage) {
      recordChange(path, change, now, (ctx.now ?? (() => new Date()))());
      logChange(r.log, change, `step ${step + 1} of ${ro.steps.length}`);
    }
    RolloutStore.with(path, (s) => s.advance(ro.id, step, now));
    return { ...who(ro), action: "raised", percentage: res.percentage, from: res.previous };
  } catch (err) {
    // Paused, not retried every minute: the operator sees why and resumes once it is fixed.
    const reason = `cannot raise to ${target}%: ${errorMessage(err)}`;
    recordChange(path, { ...who(ro), from: ro.steps[ro.step].percentage, to: target }, now, now, reason);
    RolloutStore.with(path, (s) => s.pause(ro.id, reason, now));
    r.log.error(`rollout of ${ro.channel}/${ro.device} version ${ro.version}: ${reason}`, { ...who(ro), trigger: "rollout" });
    return { ...who(ro), action: "failed", reason };
  }
}

export function describeTick(t: TickReport): string[] {
  const lines = t.actions.map((a) => {
    const name = `${a.channel}/${a.device} version ${a.version}`;
    if (a.action === "raised")
      return a.from === a.percentage
        ? `I: ${name} stays at ${a.percentage}% (next step reached)`
        : `I: raised ${name} to ${a.percentage}% (was ${a.from}%)`;
    return `${a.action === "failed" ? "E" : "I"}: ${name} ${a.action}: ${a.reason}`;
  });
  if (t.skipped) lines.push(`W: ${t.skipped}`);
  if (lines.length === 0) lines.push("I: no rollout step due");
  return lines;
}
