/**
 * Staged rollouts in /metrics (issue 17), from the state database only: one series per
 * channel/device for its newest rollout (bounded cardinality: older rollouts are history).
 * Complete families (HELP, TYPE, samples) in the text exposition format 0.0.4, appended to
 * the dashboard's /metrics as they are.
 */
import { RolloutStore, type Rollout } from "../state/rollouts.js";
import { currentPercentage } from "./model.js";

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const labels = (r: Rollout) => `{channel="${escape(r.channel)}",device="${escape(r.device)}",version="${r.version}"}`;

function family(name: string, help: string, rows: Rollout[], value: (r: Rollout) => number): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...rows.map((r) => `${name}${labels(r)} ${value(r)}`)];
}

/** The rollout families; the newest rollout of each channel/device, superseded ones left out. */
export function rolloutMetricLines(statePath: string): string[] {
  const rows = RolloutStore.with(statePath, (s) => s.latestPerDevice()).filter((r) => r.state !== "superseded");
  return [
    ...family(
      "si_rollout_percentage",
      "Phased percentage the staged rollout has set on the image (0 = aborted, 100 = completed).",
      rows,
      currentPercentage,
    ),
    ...family("si_rollout_paused", "1 while the staged rollout is paused (by hand or by the download floor), else 0.", rows, (r) =>
      r.state === "paused" ? 1 : 0,
    ),
    ...family("si_rollout_step", "Current step of the staged rollout, 1 = the first.", rows, (r) => r.step + 1),
    ...family("si_rollout_steps", "Number of steps of the staged rollout.", rows, (r) => r.steps.length),
  ];
}
