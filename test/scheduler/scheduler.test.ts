/**
 * The import scheduler on its own: UTC, validation naming the config key, no overlapping runs
 * in the process, the global lock shared with `si import-images` (busy = "lock busy, skipped",
 * nothing recorded), every run in the history, and a clean history when a run is cut short.
 */
// The schedule must be read in UTC whatever the host's zone (Node re-reads TZ when it is set).
process.env.TZ = "Asia/Kolkata";

import { afterEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import { ConfigError } from "../../src/errors.js";
import { createLogger, type Logger } from "../../src/io/log.js";
import { acquireGlobalLock } from "../../src/io/lock.js";
import type { ImportResult } from "../../src/importer/import-images.js";
import { ImportScheduler, validateSchedule } from "../../src/scheduler/scheduler.js";
import { ImportHistory } from "../../src/state/history.js";
import { REPO, makeInstance } from "../helpers/instance.js";

/** Running from src/ under vitest: the import child is the compiled one (global setup builds it). */
const child = { entry: join(REPO, "dist/src/scheduler/import-child.js"), execArgv: [] };

type Line = Record<string, unknown> & { msg: string; level: string };

function jsonLog(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  return { lines, log: createLogger({ json: true, level: "debug", write: (l) => lines.push(JSON.parse(l) as Line) }) };
}

async function instanceConfig(): Promise<Config> {
  return loadConfig(makeInstance({ withKeys: false }).config);
}

const result = (r: Partial<ImportResult> = {}): ImportResult => ({ plans: [], devices: [], failed: 0, published: 0, ...r });

function runs(config: Config) {
  const h = ImportHistory.open(config.state_path);
  try {
    return h.listRuns(100);
  } finally {
    h.close();
  }
}

const schedulers: ImportScheduler[] = [];
afterEach(async () => {
  for (const s of schedulers.splice(0)) await s.stop(100);
});
function make(config: Config, expression: string, opts: ConstructorParameters<typeof ImportScheduler>[2]): ImportScheduler {
  const s = new ImportScheduler(config, expression, opts);
  schedulers.push(s);
  return s;
}

describe("import scheduler", () => {
  it("refuses an invalid import_schedule, naming the file and the key", async () => {
    const config = await instanceConfig();
    expect(() => validateSchedule(config, "every day")).toThrow(ConfigError);
    expect(() => validateSchedule(config, "61 * * * *")).toThrow(
      new RegExp(`^Invalid import_schedule '61 \\* \\* \\* \\*' in ${config.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `),
    );
    expect(() => validateSchedule(config, "*/5 * * * *")).not.toThrow();
    expect(() => validateSchedule(config, "*/5 * * * * *")).not.toThrow();
  });

  it("reads the expression in UTC", async () => {
    const config = await instanceConfig();
    const s = make(config, "30 3 * * *", jsonLog());
    s.start();
    const next = s.nextRun()!;
    expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([3, 30]);
    // The host is on UTC+05:30 here: local time would have given 22:00 UTC.
    expect(next.getHours()).toBe(9);
  });

  it("a tick while a run is in progress is skipped and logged; the run itself is unaffected", async () => {
    const config = await instanceConfig();
    const { log, lines } = jsonLog();
    let release!: () => void;
    let calls = 0;
    const s = make(config, "0 0 1 1 *", {
      log,
      runImport: async () => {
        calls++;
        await new Promise<void>((r) => (release = r));
        return result({ published: 1 });
      },
    });
    const first = s.tick();
    await new Promise((r) => setImmediate(r));
    expect(s.status().runningSince).not.toBeNull();
    const second = await s.tick();
    expect(second).toMatchObject({ outcome: "skipped", message: "the previous scheduled import is still running" });
    release();
    expect(await first).toMatchObject({ outcome: "ok", published: 1 });
    expect(calls).toBe(1);
    expect(lines.map((l) => l.msg)).toContain("the previous scheduled import is still running, skipped");
    expect(s.status()).toMatchObject({ runningSince: null, skipped: 1, last: { outcome: "ok" } });
  });

  it("shares the global lock with si import-images: busy = 'lock busy, skipped' and nothing recorded; free = a run recorded as 'schedule'", async () => {
    const config = await instanceConfig();
    const { log, lines } = jsonLog();
    const after: string[] = [];
    const s = make(config, "0 0 1 1 *", { log, child, afterRun: async (r) => void after.push(r.outcome) });
    const lock = acquireGlobalLock(config.state_path);
    try {
      expect(await s.tick()).toMatchObject({ outcome: "skipped", message: "lock busy" });
    } finally {
      lock.release();
    }
    expect(lines.find((l) => l.msg === "lock busy, skipped")).toMatchObject({ level: "info", component: "scheduler", trigger: "schedule" });
    expect(runs(config)).toEqual([]);
    expect(after).toEqual([]);

    expect(await s.tick()).toMatchObject({ outcome: "ok", published: 0, failed: 0 });
    const recorded = runs(config);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ trigger: "schedule", outcome: "ok", dry_run: 0 });
    expect(after).toEqual(["ok"]);
    expect(lines.find((l) => l.msg.startsWith("scheduled import-images finished"))).toMatchObject({
      level: "info",
      msg: "scheduled import-images finished: ok, 0 published, 0 failed",
      component: "scheduler",
    });
  });

  it("each run is a child process: one that runs out of memory is recorded as failed with V8's error line, and the next run goes ahead", async () => {
    const config = await instanceConfig();
    const { log, lines } = jsonLog();
    const after: string[] = [];
    // A real out-of-memory death: the child gets an 8 MB heap (this process keeps its own).
    const s = make(config, "0 0 1 1 *", {
      log,
      child: { ...child, execArgv: ["--max-old-space-size=8"] },
      afterRun: async (r) => void after.push(r.outcome),
    });
    const r = await s.tick();
    const pid = Number(lines.find((l) => l.msg === "import-images child process started")?.pid);
    expect(pid).not.toBe(process.pid);
    // V8's wording varies with where the heap ran out ("Reached heap limit", "CALL_AND_RETRY_LAST").
    expect(r.outcome).toBe("error");
    expect(r.message).toMatch(new RegExp(`^import process ${pid} was killed by SIGABRT: FATAL ERROR: .*JavaScript heap out of memory$`));
    const reason = r.message!;
    expect(runs(config)[0]).toMatchObject({ trigger: "schedule", outcome: "failed", error: reason, pid });
    expect(lines.find((l) => l.level === "error" && l.msg === `scheduled import-images failed: ${reason}`)).toBeDefined();
    // The keyring renewal and the verification (afterRun) still follow a run that died.
    expect(after).toEqual(["error"]);
    const ok = make(config, "0 0 1 1 *", { log, child });
    expect(await ok.tick()).toMatchObject({ outcome: "ok" });
    expect(runs(config)[0]).toMatchObject({ trigger: "schedule", outcome: "ok" });
  });

  it("a run that throws after the importer recorded it leaves it failed with the error, not 'running'", async () => {
    const config = await instanceConfig();
    const { log, lines } = jsonLog();
    const s = make(config, "0 0 1 1 *", {
      log,
      runImport: async () => {
        const h = ImportHistory.open(config.state_path);
        h.startRun("schedule", false);
        h.close();
        throw new Error("disk full");
      },
    });
    expect(await s.tick()).toMatchObject({ outcome: "error", message: "disk full" });
    expect(runs(config)[0]).toMatchObject({ outcome: "failed", error: "import-images failed: disk full" });
    expect(lines.find((l) => l.level === "error")?.msg).toBe("scheduled import-images failed: disk full");
  });

  it("stop() waits for a run, then gives up on it and marks it interrupted", async () => {
    const config = await instanceConfig();
    const s = make(config, "0 0 1 1 *", {
      ...jsonLog(),
      runImport: async (_log, signal) => {
        const h = ImportHistory.open(config.state_path);
        h.startRun("schedule", false);
        h.close();
        return new Promise<ImportResult>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error)));
      },
    });
    void s.tick();
    await new Promise((r) => setTimeout(r, 20));
    expect(await s.stop(50)).toBe(false);
    expect(runs(config)[0]).toMatchObject({ outcome: "failed", error: "interrupted: si serve stopped during the import" });
    expect(s.nextRun()).toBeNull();
    // Idle: stopping is immediate and clean.
    const idle = make(config, "0 0 1 1 *", jsonLog());
    expect(await idle.stop(50)).toBe(true);
  });

  it("node-cron fires it on the schedule (seconds field), one run after another", async () => {
    const config = await instanceConfig();
    let calls = 0;
    let active = 0;
    let maxActive = 0;
    const s = make(config, "* * * * * *", {
      ...jsonLog(),
      runImport: async () => {
        calls++;
        maxActive = Math.max(maxActive, ++active);
        // Longer than the interval: the next tick must be skipped, never run alongside.
        await new Promise((r) => setTimeout(r, 1500));
        active--;
        return result();
      },
    });
    s.start();
    while (calls < 2) await new Promise((r) => setTimeout(r, 100));
    expect(maxActive).toBe(1);
    expect(s.status().skipped).toBeGreaterThanOrEqual(1);
  });
});
