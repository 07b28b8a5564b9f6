/**
 * `si rollout start|pause|resume|abort|status|tick` through the real CLI, on a manual channel
 * (no `rollout` in the config) with versions 1 and 2 published at 100 %.
 */
import { describe, expect, it } from "vitest";
import { ImportHistory } from "../../src/state/history.js";
import { adminFixture, expectOneLineError, poolTarball, publishFull, readIndex } from "../admin/fixture.js";
import { verifyTree } from "../tree/fixture.js";

const STEPS = "5%@0h, 25%@24h, 100%@72h";

describe("si rollout", () => {
  it("starts, pauses, resumes, aborts and reports, refusing what would break the client's phasing", async () => {
    const fx = await adminFixture();
    fx.ok("channel", "create", "rc");
    fx.ok("device", "create", "rc", "mako");
    fx.ok("channel", "alias", "stable", "rc");
    await poolTarball(fx, "pool/ubports-1.tar.xz", { "system/x": "1\n" });
    await poolTarball(fx, "pool/ubports-2.tar.xz", { "system/x": "2\n" });
    await publishFull(fx, "rc", "mako", 1, ["pool/ubports-1.tar.xz"], ["u=1"]);
    await publishFull(fx, "rc", "mako", 2, ["pool/ubports-2.tar.xz"], ["u=2"]);
    fx.ok("image", "create", "rc", "mako", "2", "pool/ubports-2.tar.xz", "rc/mako/version-2.tar.xz", "--delta", "1");
    const phased = (c = "rc") => readIndex(fx, c, "mako").images.map((i) => [i.type, i.version, i["phased-percentage"] ?? 100]);
    const fail = (status: number, message: string | RegExp, ...args: string[]) => {
      const r = fx.inst.si("rollout", ...args);
      expect([r.status, r.stdout], `si rollout ${args.join(" ")}: ${r.stderr}`).toEqual([status, ""]);
      expectOneLineError(r, message);
    };

    expect(fx.ok("rollout", "status")).toBe("No rollouts.\n");
    fail(
      1,
      "Cannot start a rollout of rc/mako version 2: no --steps given and channel rc has no 'rollout' in " + fx.inst.config,
      "start",
      "rc",
      "mako",
      "2",
    );
    fail(
      2,
      "argument --steps: step '25%' is not PERCENT%@TIME (TIME in m, h or d, e.g. 25%@24h)",
      "start",
      "rc",
      "mako",
      "2",
      "--steps",
      "5%@0h, 25%",
    );
    fail(1, /only the latest version \(2\) can be phased$/, "start", "rc", "mako", "1", "--steps", STEPS);
    // Already offered to everyone: a rollout would take it from devices that have it.
    fail(
      1,
      /^si: error: Cannot start a rollout of rc\/mako version 2: it is already offered to 100% of devices, more than the first step \(5%\); lowering it/,
      "start",
      "rc",
      "mako",
      "2",
      "--steps",
      STEPS,
    );
    expect(phased()).toEqual([
      ["full", 1, 100],
      ["full", 2, 100],
      ["delta", 2, 100],
    ]);

    // Pulled first, then started: every image of version 2 at 5 %, the alias copy too.
    fx.ok("set-phased-percentage", "rc", "mako", "2", "0");
    expect(
      fx.ok("rollout", "start", "rc", "mako", "2", "--steps", STEPS, "--floor", "40", "--grace", "1.5", "--min-downloads", "7"),
    ).toMatch(
      /^I: started rc\/mako version 2: active, step 1 of 3 \(5%\); steps 5%@0h, 25%@24h, 100%@72h; next step \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/,
    );
    expect(phased()).toEqual([
      ["full", 1, 100],
      ["full", 2, 5],
      ["delta", 2, 5],
    ]);
    expect(phased("stable")).toEqual(phased());
    verifyTree(fx.pub);
    fail(
      1,
      "Cannot start a rollout of rc/mako version 2: it already has one (active; use si rollout resume or abort)",
      "start",
      "rc",
      "mako",
      "2",
      "--steps",
      STEPS,
    );

    const status = JSON.parse(fx.ok("rollout", "status", "rc", "mako", "--json")) as Record<string, unknown>[];
    expect(status).toEqual([
      expect.objectContaining({
        channel: "rc",
        device: "mako",
        version: 2,
        state: "active",
        step: 1,
        percentage: 5,
        steps: STEPS,
        floor: 40,
        grace_hours: 1.5,
        min_downloads: 7,
        reason: null,
      }),
    ]);
    expect(fx.ok("rollout", "tick")).toBe("I: no rollout step due\n");

    expect(fx.ok("rollout", "pause", "rc", "mako")).toMatch(
      /^I: paused rc\/mako version 2: paused, step 1 of 3 \(5%\); steps .*; reason: paused by hand\n$/,
    );
    // Resuming clears the reason.
    expect(fx.ok("rollout", "resume", "rc", "mako")).toMatch(
      /^I: resumed rc\/mako version 2: active, step 1 of 3 \(5%\); steps [^;]*; next step /,
    );

    expect(fx.ok("rollout", "abort", "rc", "mako")).toMatch(
      /^I: aborted rc\/mako version 2: aborted, step 1 of 3 \(0%\); steps [^;]*; (paused [\d.]+ h in all; )?reason: aborted by hand at 5%: phased-percentage 0\n$/,
    );
    expect(phased()).toEqual([
      ["full", 1, 100],
      ["full", 2, 0],
      ["delta", 2, 0],
    ]);
    expect(phased("stable")).toEqual(phased());
    verifyTree(fx.pub);
    fail(1, "Cannot resume the rollout of rc/mako: its rollout of version 2 is aborted", "resume", "rc", "mako");
    fail(1, "Cannot pause the rollout of stable/mako: it has no rollout", "pause", "stable", "mako");
    expect(fx.ok("rollout", "status")).toMatch(/^rc\/mako version 2: aborted, step 1 of 3 \(0%\)/);

    // Start and abort each recorded a run with trigger "rollout" (the set-phased-percentage by hand is not).
    const history = ImportHistory.open(fx.config.state_path);
    try {
      expect(
        history.listRuns(10).map((r) => [r.trigger, r.outcome, r.devices.map((d) => `${d.channel}/${d.device} ${d.version}`)]),
      ).toEqual([
        ["rollout", "ok", ["rc/mako 2"]],
        ["rollout", "ok", ["rc/mako 2"]],
      ]);
    } finally {
      history.close();
    }
  }, 400_000); // some 20 CLI runs: minutes on a loaded CI machine
});
