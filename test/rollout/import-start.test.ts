/**
 * Auto start on import (issue 17): a channel with `rollout =` publishes each new version at
 * the first step's percentage in the same index commit as the images, so no committed index
 * ever offers it to every device; the rollout is recorded, an older one superseded.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { parseRolloutSteps } from "../../src/model/rollout-steps.js";
import { RolloutStore } from "../../src/state/rollouts.js";
import { buildRolloutTree, phases, STEPS, type RolloutTree } from "./fixture.js";

describe("a channel with rollout publishes new images at the first step", () => {
  let t: RolloutTree;
  beforeAll(async () => {
    t = await buildRolloutTree();
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it("version 1, then version 2 (full and delta) at 5% in one commit; the rollouts are recorded", async () => {
    expect(phases(t.index())).toEqual([["full", 1, null, 5]]);
    const v1 = RolloutStore.with(t.config.state_path, (s) => s.latest("devel", "mako"))!;
    expect(v1).toMatchObject({
      version: 1,
      state: "active",
      step: 0,
      steps: parseRolloutSteps(STEPS),
      floor: 50,
      graceHours: 2,
      minDownloads: 20,
    });

    await t.importV2();
    // The older version's phase is dropped on load (only the newest may be phased, §2.3).
    expect(phases(t.index())).toEqual([
      ["full", 1, null, 100],
      ["full", 2, null, 5],
      ["delta", 2, 1, 5],
    ]);
    // Every index a commit wrote is kept as index-<hash>.json (versioned-index.ts): none of
    // them names version 2 at any other percentage than 5 (no window at 100 %).
    const dir = join(t.inst.publish, "devel/mako");
    const commits = readdirSync(dir)
      .filter((n) => /^index-[0-9a-f]{16}\.json$/.test(n))
      .map((n) => JSON.parse(readFileSync(join(dir, n), "utf8")) as IndexDoc);
    const withV2 = commits.filter((d) => d.images.some((i) => i.version === 2));
    expect(withV2.length).toBeGreaterThan(0);
    for (const d of withV2) for (const i of d.images.filter((x) => x.version === 2)) expect(i["phased-percentage"]).toBe(5);

    const rows = RolloutStore.with(t.config.state_path, (s) => [s.get(v1.id)!, s.latest("devel", "mako")!]);
    expect(rows[0]).toMatchObject({ version: 1, state: "superseded", reason: "version 2 started a rollout" });
    expect(rows[1]).toMatchObject({ version: 2, state: "active", step: 0 });
    const status = t.inst.si("rollout", "status", "devel", "mako");
    expect(status.stdout).toMatch(/^devel\/mako version 2: active, step 1 of 3 \(5%\); steps 5%@0h, 25%@24h, 100%@72h; next step \d{4}-/);
  });
});
