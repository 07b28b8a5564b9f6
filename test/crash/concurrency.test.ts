/**
 * One writer at a time (SECURITY.md "One writer"): while a real import runs, a second
 * import-images exits 0 saying the lock is busy, and an admin command waits for the lock and
 * then gives up with a message naming it; neither changes anything, and the running import
 * completes.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { setupCrashInstance } from "../../bench/crash.js";
import { holderPath, lockPath } from "../../src/io/lock.js";
import { REPO } from "../helpers/instance.js";
import { expectTreeVerifies } from "../security/fixture.js";

describe("a second writer during an import", () => {
  it("import-images: busy, exit 0; copy-image: waits, then a clear error", async () => {
    const inst = await setupCrashInstance({ files: 3000 });
    await inst.must(["import-images"]);
    inst.bump();
    const first = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", inst.configPath, "import-images"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    first.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const ended = new Promise<number | null>((ok) => first.once("close", ok));
    // The import holds the lock once it has global.lock open (Linux: its fd table).
    const lockFile = lockPath(inst.config.state_path);
    const holdsLock = () => {
      try {
        return readdirSync(`/proc/${first.pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${first.pid}/fd/${fd}`) === lockFile;
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    };
    while (!holdsLock()) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50)); // from open() to BEGIN EXCLUSIVE
    // Holding it, the import names itself next to the lock (issue 15 item 4).
    while (!existsSync(holderPath(inst.config.state_path))) await new Promise((r) => setTimeout(r, 5));
    // Frozen mid-import, so "during the import" does not depend on how fast this machine is.
    first.kill("SIGSTOP");
    let second, admin;
    try {
      [second, admin] = await Promise.all([
        inst.si(["import-images"]),
        inst.si(["copy-image", "devel", "stable", "mako", "--lock-timeout", "1"]),
      ]);
    } finally {
      first.kill("SIGCONT");
    }
    expect(second.status).toBe(0);
    const held = JSON.parse(readFileSync(holderPath(inst.config.state_path), "utf8")) as { since: string };
    const who = `import-images, pid ${first.pid}, since ${held.since}`;
    expect(second.out).toBe(`Something else holds the global lock (${who}). exiting.\n`);
    expect(admin.status, `${admin.ms} ms: ${admin.out}\nimport: ${out.slice(-600)}`).toBe(1);
    expect(admin.out).toContain(
      `si: error: Cannot copy image: the global lock ${lockPath(inst.config.state_path)} stayed busy for 1 s (held by ${who}; try again later, or raise --lock-timeout)`,
    );
    expect(await ended, out).toBe(0);
    // The refused copy left stable/mako as it was: no image.
    const stable = JSON.parse(readFileSync(join(inst.config.publish_path, "stable/mako/index.json"), "utf8")) as { images: unknown[] };
    expect(stable.images).toEqual([]);
    await inst.farm.close();
    await expectTreeVerifies({ config: inst.config } as Parameters<typeof expectTreeVerifies>[0]);
  }, 300_000);
});
