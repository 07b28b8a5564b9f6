/**
 * The snapshot a push reads its documents from (src/mirror/snapshot.ts), taken while another
 * process commits: every pair it copies matches, and every file its channels.json names is in
 * its listing. The writer leaves 30 ms between a document's rename and its signature's (a busy
 * disk, src/server/pair-settle.ts), so a copy that ignored the gap would catch torn pairs.
 */
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { takeSnapshot } from "../../src/mirror/snapshot.js";
import { tmp } from "../importer/fixtures.js";

const WRITER = `
const fs = require("node:fs");
const crypto = require("node:crypto");
const path = require("node:path");
const [root, stopFile] = process.argv.slice(1);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
for (let i = 1; !fs.existsSync(stopFile); i++) {
  fs.writeFileSync(path.join(root, "pool", "f-" + i), "file " + i);
  const doc = JSON.stringify({ file: "pool/f-" + i, i });
  fs.writeFileSync(path.join(root, ".c.new"), doc);
  fs.writeFileSync(path.join(root, ".s.new"), "sig:" + crypto.createHash("sha256").update(doc).digest("hex"));
  fs.renameSync(path.join(root, ".c.new"), path.join(root, "channels.json"));
  sleep(30);
  fs.renameSync(path.join(root, ".s.new"), path.join(root, "channels.json.asc"));
  if (i > 3) fs.rmSync(path.join(root, "pool", "f-" + (i - 3)), { force: true });
  sleep(5 + (i % 4) * 7);
}
`;

describe("takeSnapshot", () => {
  it("copies only settled pairs, and lists every file the copied channels.json names", async () => {
    const root = tmp("si-snapshot-tree-");
    mkdirSync(join(root, "pool"));
    const doc0 = JSON.stringify({ file: "pool/f-0", i: 0 });
    writeFileSync(join(root, "pool/f-0"), "file 0");
    writeFileSync(join(root, "channels.json"), doc0);
    writeFileSync(join(root, "channels.json.asc"), "sig:" + createHash("sha256").update(doc0).digest("hex"));
    const stop = join(root, "..", `${root.split("/").pop()}.stop`);
    const writer = spawn(process.execPath, ["-e", WRITER, root, stop], { stdio: "inherit" });
    const seen = new Set<number>();
    try {
      // Until the writer has committed several times while we copied (it starts slowly under load).
      for (let n = 0; seen.size < 8 && n < 400; n++) {
        const snap = await takeSnapshot(root, tmp("si-snapshot-work-"));
        try {
          const dir = snap.rootOf("channels");
          const doc = readFileSync(join(dir, "channels.json"), "utf8");
          const sig = readFileSync(join(dir, "channels.json.asc"), "utf8");
          expect(sig, `snapshot ${n}`).toBe("sig:" + createHash("sha256").update(doc).digest("hex"));
          const named = (JSON.parse(doc) as { file: string; i: number }).file;
          seen.add((JSON.parse(doc) as { i: number }).i);
          // Named, so present: the copy was taken before the listing.
          expect(
            snap.files.map((f) => f.path),
            `snapshot ${n}`,
          ).toContain(named);
          expect(snap.files.some((f) => f.path.startsWith("."))).toBe(false);
          expect(snap.channelsSha256).toBe(createHash("sha256").update(doc).digest("hex"));
        } finally {
          await snap.close();
        }
        await new Promise((r) => setTimeout(r, 7));
      }
    } finally {
      writeFileSync(stop, "");
      await new Promise((r) => writer.once("close", r));
    }
    // The writer really was committing meanwhile.
    expect(seen.size).toBeGreaterThanOrEqual(8);
  });
});
