/**
 * Crash safety, short form of `npm run test:crash` (bench/crash.ts, same code): SIGKILL
 * import-images, copy-image, tag-image and generate-keyrings at random moments; after each
 * kill verify-tree passes and the keyrings verify; the next run completes, leaves no orphan
 * or temporary, and no published image is lost.
 */
import { describe, expect, it } from "vitest";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCrashCampaign, setupCrashInstance } from "../../bench/crash.js";
import { verifyTree } from "../../src/verify/index.js";
import { formatReport } from "../../src/verify/report.js";

describe("SIGKILL at random moments", () => {
  it("leaves a consistent tree every time, and the next run repairs everything", async () => {
    const lines: string[] = [];
    const res = await runCrashCampaign({ kills: 8, seed: 9, files: 150, log: (l) => lines.push(l) });
    expect(res.failures, `${lines.join("\n")}\n${res.failures.join("\n")}`).toEqual([]);
    expect(res.summary).toBe("8 kills, 8 consistent trees, 0 lost images");
    // Every command ran under the kill timer; which ones the kill caught mid-run depends on
    // timing (generate-keyrings often finishes first), but most of them must have been.
    expect(Object.keys(res.attempted).sort()).toEqual(["copy-image", "generate-keyrings", "import-images", "tag-image"]);
    expect(Object.keys(res.byCommand).length).toBeGreaterThanOrEqual(3);
  }, 600_000);
});

describe("after a killed import", () => {
  it("the next import removes the dead run's download directory at once (not two runs later)", async () => {
    const inst = await setupCrashInstance({ files: 50 });
    await inst.must(["import-images"]);
    const dead = join(inst.config.publish_path, "pool/.tmp-dead1");
    mkdirSync(dead);
    writeFileSync(join(dead, "rootfs.tar.xz"), "half a download");
    inst.bump();
    const r = await inst.must(["import-images", "-v"]);
    await inst.farm.close();
    expect(existsSync(dead), r.out).toBe(false);
    const rep = await verifyTree(inst.config, {});
    expect(formatReport(rep).filter((l) => /orphan/.test(l))).toEqual([]);
    expect(rep.errors).toBe(0);
  }, 300_000);
});
