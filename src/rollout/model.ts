/**
 * The rules of a staged rollout (issue 17), pure: which step is due, and whether the pause
 * rule trips. The tick (tick.ts) applies what they decide.
 *
 * Time: a step is due once the rollout's *running* time reaches its `afterHours`; time spent
 * paused does not count (a rollout paused for a day reaches its 72 h step a day later).
 *
 * Pause rule: downloads started but not completed are the one failure signal the server
 * sees. Once the current step's window (since its raise, or the last resume) is older than
 * the grace period and at least `minDownloads` downloads of the image started in it, a
 * completed/started ratio under `floor` % pauses the rollout.
 */
import type { RolloutStep } from "../config/types.js";
import type { Rollout } from "../state/rollouts.js";

const HOUR_MS = 3_600_000;

export type RolloutTiming = Pick<Rollout, "steps" | "step" | "startedAt" | "pausedHours" | "pausedAt" | "state">;

/** Hours the rollout has been running at `now` (paused time left out). */
export function runningHours(r: RolloutTiming, now: Date): number {
  const pausedNow = r.state === "paused" && r.pausedAt ? Math.max(0, now.getTime() - r.pausedAt.getTime()) / HOUR_MS : 0;
  return Math.max(0, (now.getTime() - r.startedAt.getTime()) / HOUR_MS - r.pausedHours - pausedNow);
}

/** Index of the last step whose time has come (never below the current one). */
export function dueStep(r: RolloutTiming, now: Date): number {
  const hours = runningHours(r, now);
  let due = r.step;
  for (let i = r.step + 1; i < r.steps.length; i++) if (hours >= r.steps[i].afterHours) due = i;
  return due;
}

/** When the next step is due, for an active rollout (null: at the last step, or paused). */
export function nextStepAt(r: RolloutTiming, now: Date): Date | null {
  if (r.state !== "active" || r.step >= r.steps.length - 1) return null;
  const wait = r.steps[r.step + 1].afterHours - runningHours(r, now);
  return new Date(now.getTime() + Math.max(0, wait) * HOUR_MS);
}

/** The phased percentage the image has in this state (aborted = pulled). */
export function currentPercentage(r: Pick<Rollout, "steps" | "step" | "state">): number {
  return r.state === "aborted" ? 0 : r.steps[Math.min(r.step, r.steps.length - 1)].percentage;
}

export interface DownloadFigures {
  started: number;
  completed: number;
}

/** Why the rollout must pause, or null. `counts` are the downloads of the image since `stepStartedAt`. */
export function pauseReason(
  r: Pick<Rollout, "version" | "stepStartedAt" | "floor" | "graceHours" | "minDownloads">,
  counts: DownloadFigures,
  now: Date,
): string | null {
  if ((now.getTime() - r.stepStartedAt.getTime()) / HOUR_MS < r.graceHours) return null;
  if (counts.started < r.minDownloads || counts.started <= 0) return null;
  const ratio = (100 * counts.completed) / counts.started;
  if (ratio >= r.floor) return null;
  return (
    `only ${counts.completed} of ${counts.started} downloads of version ${r.version} started since ` +
    `${r.stepStartedAt.toISOString().replace(/\.\d{3}Z$/, "Z")} completed (${ratio.toFixed(1)}% < rollout_floor ${r.floor}%)`
  );
}

/** `5% → 25% → 100%` with the current step in brackets. */
export function describeSteps(steps: readonly RolloutStep[], current?: number): string {
  return steps
    .map((s, i) => (i === current ? `[${s.percentage}%@${+s.afterHours.toFixed(2)}h]` : `${s.percentage}%@${+s.afterHours.toFixed(2)}h`))
    .join(" → ");
}
