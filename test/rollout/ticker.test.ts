/**
 * The rollout ticker of `si serve` (src/scheduler/rollout-ticker.ts), driven by an injected
 * timer and clock: it ticks on the timer, never two ticks at once, leaves the raises to the
 * next tick while the global lock is busy (an import holds it), and is started and stopped
 * by the admin operations of si serve even without import_schedule.
 */
import { describe, expect, it } from "vitest";
import { prepareOperations } from "../../src/dashboard/operations.js";
import { createLogger } from "../../src/io/log.js";
import { acquireGlobalLock } from "../../src/io/lock.js";
import { parseRolloutSteps } from "../../src/model/rollout-steps.js";
import { startRollout } from "../../src/rollout/actions.js";
import { RolloutTicker, type Timer } from "../../src/scheduler/rollout-ticker.js";
import { publishBasicImage, readJson, signedFile, treeFixture } from "../tree/fixture.js";
import { tickRollouts } from "../../src/rollout/tick.js";
import { rolloutMetricLines } from "../../src/rollout/metrics.js";
import { RolloutStore } from "../../src/state/rollouts.js";
import { join } from "node:path";
import type { IndexDoc } from "../../src/model/index-doc.js";

const quiet = () => {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: "debug", json: false, write: (l) => lines.push(l) }) };
};

/** A timer the test fires by hand. */
function manualTimer(): Timer & { fire(): void; ms: number[]; cancelled: number } {
  const fns: (() => void)[] = [];
  const t = {
    ms: [] as number[],
    cancelled: 0,
    every(ms: number, fn: () => void) {
      t.ms.push(ms);
      fns.push(fn);
      return () => {
        t.cancelled++;
        fns.splice(fns.indexOf(fn), 1);
      };
    },
    fire: () => fns.forEach((f) => f()),
  };
  return t;
}

describe("the rollout ticker", () => {
  it("ticks on its timer, one tick at a time, and logs a failing tick", async () => {
    const timer = manualTimer();
    const { lines, log } = quiet();
    let calls = 0;
    let release!: () => void;
    const fx = await treeFixture();
    const ticker = new RolloutTicker(fx.config, {
      log,
      timer,
      tick: () => {
        calls++;
        if (calls === 2) return Promise.reject(new Error("disk on fire"));
        return new Promise((resolve) => (release = () => resolve({ at: new Date(), actions: [], skipped: null })));
      },
    });
    ticker.start();
    expect(timer.ms).toEqual([60_000]);
    timer.fire();
    timer.fire(); // while the first runs: skipped
    expect(calls).toBe(1);
    release();
    await new Promise((r) => setImmediate(r));
    expect([ticker.last?.actions, ticker.last?.skipped]).toEqual([[], null]);
    expect(await ticker.tick()).toBeNull();
    expect(calls).toBe(2);
    expect(lines.join("\n")).toContain("rollout tick failed: disk on fire");
    await ticker.stop();
    expect(timer.cancelled).toBe(1);
  });

  it("leaves a due raise to the next tick while the global lock is busy, then raises", async () => {
    const fx = await treeFixture();
    await fx.tree.createChannel("devel");
    await fx.tree.createDevice("devel", "mako");
    await publishBasicImage(fx, "devel", "mako"); // version 1234 at 50 %
    const t0 = new Date("2026-12-01T00:00:00Z");
    let now = t0;
    await startRollout(
      { config: fx.config, signer: fx.signer, now: () => now },
      { channel: "devel", device: "mako", version: 1234, steps: parseRolloutSteps("50%@0h, 100%@1h") },
    );
    const phase = () => (readJson(join(fx.pub, "devel/mako/index.json")) as IndexDoc).images[0]["phased-percentage"] ?? 100;
    const { log } = quiet();
    const ticker = new RolloutTicker(fx.config, {
      log,
      timer: manualTimer(),
      now: () => now,
      counts: () => ({ started: 0, completed: 0 }),
    });
    now = new Date(t0.getTime() + 2 * 3_600_000);
    const lock = acquireGlobalLock(fx.config.state_path, { holder: "import-images (test)" });
    try {
      const busy = await ticker.tick();
      expect(busy?.actions).toEqual([]);
      expect(busy?.skipped).toMatch(/global lock is busy/);
      expect(phase()).toBe(50);
    } finally {
      lock.release();
    }
    const done = await ticker.tick();
    expect(done?.actions).toEqual([{ channel: "devel", device: "mako", version: 1234, action: "raised", percentage: 100, from: 50 }]);
    expect(phase()).toBe(100);
  });

  it("marks a rollout superseded once a newer version is published (only the newest is phased)", async () => {
    const fx = await treeFixture();
    await fx.tree.createChannel("devel");
    await fx.tree.createDevice("devel", "mako");
    await publishBasicImage(fx, "devel", "mako"); // version 1234 at 50 %
    const steps = parseRolloutSteps("50%@0h, 100%@1h");
    await startRollout({ config: fx.config, signer: fx.signer }, { channel: "devel", device: "mako", version: 1234, steps });
    await signedFile(fx.signer, join(fx.pub, "devel/mako/full-1235"));
    await (await fx.tree.getDevice("devel", "mako")).createImage("full", 1235, "newer", ["devel/mako/full-1235"]);
    const report = await tickRollouts({ config: fx.config, signer: fx.signer, counts: () => ({ started: 0, completed: 0 }) });
    expect(report.actions).toEqual([
      { channel: "devel", device: "mako", version: 1234, action: "superseded", reason: "version 1235 is newer" },
    ]);
    expect(RolloutStore.with(fx.config.state_path, (s) => s.latest("devel", "mako"))).toMatchObject({ state: "superseded" });
    expect(rolloutMetricLines(fx.config.state_path).filter((l) => !l.startsWith("#"))).toEqual([]);
  });

  it("si serve's operations run it without import_schedule, not with --no-schedule", async () => {
    const fx = await treeFixture();
    const logger = { log() {} };
    const timer = manualTimer();
    const ops = prepareOperations(fx.config, { logger, schedule: true, adminPort: null, rollouts: { timer } });
    expect(ops.scheduler).toBeNull();
    expect(ops.rollouts).not.toBeNull();
    await ops.start();
    expect(timer.ms).toEqual([60_000]);
    await ops.stop(1000);
    expect(timer.cancelled).toBe(1);
    ops.close();
    expect(prepareOperations(fx.config, { logger, schedule: false, adminPort: null }).rollouts).toBeNull();
  });
});
