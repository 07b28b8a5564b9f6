/**
 * The pause rule end to end (issue 17 "Done when"): devices offered version 2 at 5 % start
 * downloading its files from si serve and never finish (each gets the first 100 bytes of
 * every file, as a device whose connection drops and never resumes). si serve counts them
 * (src/fleet) into the state database; after the grace period the tick, reading those
 * counts, pauses the rollout with the reason, and stops raising it even once the next step
 * is due. Resumed, the paused time does not count toward the next step, which comes later.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resumeRollout } from "../../src/rollout/actions.js";
import { tickRollouts } from "../../src/rollout/tick.js";
import { startServer } from "../../src/server/start.js";
import { RolloutStore } from "../../src/state/rollouts.js";
import { choosePath, getCandidates, iterPath } from "../../src/verify/client-path.js";
import type { ChannelsDoc } from "../../src/model/channels.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { buildRolloutTree, phases, type RolloutTree } from "./fixture.js";
import { get, makeFleet, pool } from "./fleet-sim.js";

const H = 3_600_000;

describe("a rollout whose downloads never complete", () => {
  let t: RolloutTree;
  beforeAll(async () => {
    t = await buildRolloutTree({ channelLines: ["rollout_min_downloads = 10", "rollout_floor = 50", "rollout_grace = 2"] });
    await t.importV2();
  }, 180_000);
  afterAll(async () => {
    await t?.close();
  });

  it("pauses after the grace period with the reason, stops raising, and resumes later", async () => {
    const server = await startServer(t.config, {
      address: "127.0.0.1",
      httpPort: 0,
      httpsPort: null,
      accessLog: false,
      logger: { log() {} },
    });
    const port = server.httpPort!;
    let cut = 0;
    try {
      const fleet = makeFleet(400, 1);
      await pool(fleet, 16, async (d) => {
        const headers = { "User-Agent": `Ubuntu System Image Upgrade Client: device=mako;channel=devel;build=1` };
        const channels = JSON.parse((await get(port, "/channels.json", headers, d.address)).body.toString()) as ChannelsDoc;
        const index = JSON.parse((await get(port, channels.devel.devices.mako.index, headers, d.address)).body.toString()) as IndexDoc;
        const { winner } = choosePath(getCandidates(index.images, 1), { channel: null, machineId: d.machineId });
        if (winner.length === 0) return;
        cut++;
        for (const { file } of iterPath(winner)) {
          const r = await get(port, file.path, { ...headers, Range: "bytes=0-99" }, d.address);
          expect(r.status).toBe(206);
        }
      });
    } finally {
      // Stopping flushes the fleet counts into the state database.
      await server.close();
    }
    expect(cut).toBeGreaterThanOrEqual(10);

    const ro = RolloutStore.with(t.config.state_path, (s) => s.latest("devel", "mako"))!;
    const start = ro.startedAt.getTime();
    let now = new Date(start + 1.5 * H);
    const tick = () => tickRollouts({ config: t.config, now: () => now });
    // Within the grace period: nothing.
    expect((await tick()).actions).toEqual([]);
    now = new Date(start + 2.5 * H);
    const paused = await tick();
    expect(paused.actions.map((a) => [a.channel, a.device, a.version, a.action])).toEqual([["devel", "mako", 2, "paused"]]);
    expect(paused.actions[0].reason).toMatch(
      new RegExp(`^only 0 of ${cut} downloads of version 2 started since .* completed \\(0\\.0% < rollout_floor 50%\\)$`),
    );
    expect(RolloutStore.with(t.config.state_path, (s) => s.latest("devel", "mako"))).toMatchObject({ state: "paused", step: 0 });
    // The 24 h step is due, but a paused rollout is not raised.
    now = new Date(start + 30 * H);
    expect((await tick()).actions).toEqual([]);
    expect(phases(t.index()).filter((p) => p[1] === 2)).toEqual([
      ["full", 2, null, 5],
      ["delta", 2, 1, 5],
    ]);
    const status = t.inst.si("rollout", "status", "devel");
    expect(status.stdout).toContain("devel/mako version 2: paused, step 1 of 3 (5%)");
    expect(status.stdout).toContain(`reason: only 0 of ${cut} downloads`);

    // Resumed at 30 h after 27.5 h paused: 2.5 h of running time, so the 24 h step comes at 51.5 h.
    await resumeRollout({ config: t.config, now: () => now }, "devel", "mako");
    now = new Date(start + 51 * H);
    expect((await tick()).actions).toEqual([]);
    now = new Date(start + 51.5 * H);
    expect((await tick()).actions).toEqual([{ channel: "devel", device: "mako", version: 2, action: "raised", percentage: 25, from: 5 }]);
    expect(phases(t.index()).filter((p) => p[1] === 2)).toEqual([
      ["full", 2, null, 25],
      ["delta", 2, 1, 25],
    ]);
  }, 120_000);
});
