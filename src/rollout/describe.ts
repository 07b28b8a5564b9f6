/** How a rollout is shown: `si rollout status` lines and the JSON both it and the dashboard use. */
import { formatRolloutSteps } from "../model/rollout-steps.js";
import type { Rollout } from "../state/rollouts.js";
import { currentPercentage, nextStepAt, runningHours } from "./model.js";

export interface RolloutSummary {
  id: number;
  channel: string;
  device: string;
  version: number;
  state: Rollout["state"];
  steps: string;
  /** 1 = the first step. */
  step: number;
  percentage: number;
  started_at: string;
  /** Hours running, paused time left out. */
  running_hours: number;
  paused_hours: number;
  paused_at: string | null;
  next_step_at: string | null;
  reason: string | null;
  floor: number;
  grace_hours: number;
  min_downloads: number;
}

const iso = (d: Date | null) => (d ? d.toISOString().replace(/\.\d{3}Z$/, "Z") : null);

export function summarize(r: Rollout, now: Date): RolloutSummary {
  const pausedNow = r.state === "paused" && r.pausedAt ? (now.getTime() - r.pausedAt.getTime()) / 3_600_000 : 0;
  return {
    id: r.id,
    channel: r.channel,
    device: r.device,
    version: r.version,
    state: r.state,
    steps: formatRolloutSteps(r.steps),
    step: r.step + 1,
    percentage: currentPercentage(r),
    started_at: iso(r.startedAt)!,
    running_hours: +runningHours(r, now).toFixed(2),
    paused_hours: +(r.pausedHours + Math.max(0, pausedNow)).toFixed(2),
    paused_at: iso(r.pausedAt),
    next_step_at: iso(nextStepAt(r, now)),
    reason: r.reason,
    floor: r.floor,
    grace_hours: r.graceHours,
    min_downloads: r.minDownloads,
  };
}

/** `devel/mako version 3: active, step 2 of 3 (25%), next step 2026-12-09T00:00:00Z` */
export function describeRollout(r: Rollout, now: Date): string {
  const s = summarize(r, now);
  const parts = [`${s.channel}/${s.device} version ${s.version}: ${s.state}, step ${s.step} of ${r.steps.length} (${s.percentage}%)`];
  parts.push(`steps ${s.steps}`);
  if (s.next_step_at) parts.push(`next step ${s.next_step_at}`);
  if (s.paused_hours > 0) parts.push(`paused ${s.paused_hours} h in all`);
  if (s.reason) parts.push(`reason: ${s.reason}`);
  return parts.join("; ");
}
