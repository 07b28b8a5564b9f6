/**
 * The steps of a staged rollout (issue 17): `5%@0h, 25%@24h, 100%@72h`. Pure: the config
 * loader and `si rollout start --steps` both read them here.
 *
 * Rules, each protecting the client's phasing (client-protocol §6.3: a device takes the image
 * when its own phase, fixed per image version and machine id, is <= phased-percentage):
 * percentages strictly rise, so a device offered the image at one step keeps it at the next;
 * times strictly rise from 0h, the first step being the percentage an image is published at.
 */
import type { RolloutStep } from "../config/types.js";

const STEP = /^(\d{1,3})%@(\d+(?:\.\d+)?)(h|d|m)$/;
const HOURS: Record<string, number> = { m: 1 / 60, h: 1, d: 24 };

/** Parses `text`; throws an Error whose message says which step is wrong and why. */
export function parseRolloutSteps(text: string): RolloutStep[] {
  const parts = text
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new Error("no steps (expected e.g. '5%@0h, 25%@24h, 100%@72h')");
  const steps: RolloutStep[] = [];
  for (const part of parts) {
    const m = STEP.exec(part.replace(/\s+/g, ""));
    if (!m) throw new Error(`step '${part}' is not PERCENT%@TIME (TIME in m, h or d, e.g. 25%@24h)`);
    const percentage = Number(m[1]);
    const afterHours = Number(m[2]) * HOURS[m[3]];
    if (percentage < 1 || percentage > 100) throw new Error(`step '${part}': percentage must be 1..100`);
    const prev = steps[steps.length - 1];
    if (!prev && afterHours !== 0) throw new Error(`step '${part}': the first step must start at 0h (the image is published at it)`);
    // A falling percentage would take the image away from devices that already saw it.
    if (prev && percentage <= prev.percentage) throw new Error(`step '${part}': percentages must rise (${prev.percentage}% before it)`);
    if (prev && afterHours <= prev.afterHours) throw new Error(`step '${part}': times must rise (${prev.afterHours}h before it)`);
    steps.push({ percentage, afterHours });
  }
  if (steps[steps.length - 1].percentage !== 100) throw new Error("the last step must be 100%");
  return steps;
}

/** `5%@0h, 25%@24h, 100%@72h`: the form parseRolloutSteps reads. */
export function formatRolloutSteps(steps: readonly RolloutStep[]): string {
  return steps.map((s) => `${s.percentage}%@${+s.afterHours.toFixed(4)}h`).join(", ");
}

/** The pause rule's defaults (`rollout_floor`, `rollout_grace`, `rollout_min_downloads`). */
export const ROLLOUT_DEFAULTS = { rollout_floor: 50, rollout_grace_hours: 2, rollout_min_downloads: 20 } as const;
