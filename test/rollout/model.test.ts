/** The rollout rules (src/rollout/model.ts): due steps with paused time left out, and the pause rule. */
import { describe, expect, it } from "vitest";
import { parseRolloutSteps } from "../../src/model/rollout-steps.js";
import { currentPercentage, dueStep, nextStepAt, pauseReason, runningHours } from "../../src/rollout/model.js";
import type { Rollout } from "../../src/state/rollouts.js";

const H = 3_600_000;
const T0 = new Date("2026-12-01T00:00:00Z");
const at = (hours: number) => new Date(T0.getTime() + hours * H);
const base = (over: Partial<Rollout> = {}): Rollout => ({
  id: 1,
  channel: "devel",
  device: "mako",
  version: 3,
  steps: parseRolloutSteps("5%@0h, 25%@24h, 100%@72h"),
  startedAt: T0,
  state: "active",
  step: 0,
  stepStartedAt: T0,
  pausedHours: 0,
  pausedAt: null,
  reason: null,
  floor: 50,
  graceHours: 2,
  minDownloads: 20,
  updatedAt: T0,
  ...over,
});

describe("due steps", () => {
  it("reaches each step at its time, several at once after a gap, never goes back", () => {
    expect(dueStep(base(), at(23.99))).toBe(0);
    expect(dueStep(base(), at(24))).toBe(1);
    expect(dueStep(base(), at(100))).toBe(2);
    expect(dueStep(base({ step: 2 }), at(1))).toBe(2);
    expect(nextStepAt(base(), at(1))).toEqual(at(24));
    expect(nextStepAt(base({ step: 2, state: "completed" }), at(100))).toBeNull();
  });

  it("does not count paused time: earlier pauses and the pause in progress", () => {
    // Paused 10 h in all before: the 24 h step comes at 34 h.
    expect(dueStep(base({ pausedHours: 10 }), at(33.9))).toBe(0);
    expect(dueStep(base({ pausedHours: 10 }), at(34))).toBe(1);
    // Paused since 20 h: running time stays at 20 h.
    const paused = base({ state: "paused", pausedAt: at(20) });
    expect(runningHours(paused, at(50))).toBe(20);
    expect(dueStep(paused, at(50))).toBe(0);
    expect(nextStepAt(paused, at(50))).toBeNull();
  });

  it("an aborted rollout is at 0 %", () => {
    expect(currentPercentage(base({ step: 1 }))).toBe(25);
    expect(currentPercentage(base({ step: 1, state: "aborted" }))).toBe(0);
  });
});

describe("the pause rule", () => {
  const r = base({ stepStartedAt: at(24), step: 1 });
  it("waits for the grace period and the minimum of started downloads", () => {
    expect(pauseReason(r, { started: 100, completed: 0 }, at(25.9))).toBeNull();
    expect(pauseReason(r, { started: 19, completed: 0 }, at(27))).toBeNull();
    expect(pauseReason(r, { started: 0, completed: 0 }, at(27))).toBeNull();
  });
  it("pauses under the floor, with the figures in the reason; at or over the floor it goes on", () => {
    expect(pauseReason(r, { started: 40, completed: 20 }, at(27))).toBeNull();
    expect(pauseReason(r, { started: 40, completed: 19 }, at(27))).toBe(
      "only 19 of 40 downloads of version 3 started since 2026-12-02T00:00:00Z completed (47.5% < rollout_floor 50%)",
    );
  });
});
