/**
 * Crash safety, short form of `npm run test:crash` (bench/crash.ts, same code): SIGKILL
 * import-images, copy-image, tag-image and generate-keyrings at random moments; after each
 * kill verify-tree passes and the keyrings verify; the next run completes, leaves no orphan
 * or temporary, and no published image is lost.
 */
import { describe, expect, it } from "vitest";
import { runCrashCampaign } from "../../bench/crash.js";

describe("SIGKILL at random moments", () => {
  it("leaves a consistent tree every time, and the next run repairs everything", async () => {
    const lines: string[] = [];
    const res = await runCrashCampaign({ kills: 8, seed: 9, files: 150, log: (l) => lines.push(l) });
    expect(res.failures, `${lines.join("\n")}\n${res.failures.join("\n")}`).toEqual([]);
    expect(res.summary).toBe("8 kills, 8 consistent trees, 0 lost images");
    expect(res.byCommand).toEqual({ "import-images": 2, "copy-image": 2, "tag-image": 2, "generate-keyrings": 2 });
  }, 600_000);
});
