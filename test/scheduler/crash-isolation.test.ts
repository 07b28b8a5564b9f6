/**
 * Issue 13, "an import can crash without hurting anything else": `si serve` runs each
 * scheduled import in a child process. When that child dies — SIGKILL from outside (as the
 * kernel's OOM killer does), or an uncaught error inside it — serving answers during and
 * after, the run is recorded as failed with the reason, and the next tick publishes. A
 * `si import-images` killed mid-run is shown as interrupted by `si history`, /metrics and the
 * dashboard alike.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parseMetrics } from "../dashboard/metrics-parse.js";
import { REPO, type Instance } from "../helpers/instance.js";
import { get, spawnServe, type Serve } from "../helpers/serve-process.js";
import { standardInstance, tarXz } from "../importer/fixtures.js";
import { farmWithInputs, type GatedFarm } from "./gated-farm.js";

interface HistoryRun {
  id: number;
  trigger: string;
  outcome: string;
  error: string | null;
  pid: number | null;
  devices: { outcome: string; version: number | null }[];
}

const msgStarts = (prefix: string) => (l: Record<string, unknown>) => typeof l.msg === "string" && l.msg.startsWith(prefix);

async function metric(adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const samples = parseMetrics((await get(new URL("/metrics", adminUrl).href)).body);
  return samples.find((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v))?.value;
}

async function history(inst: Instance): Promise<HistoryRun[]> {
  const r = await inst.siAsync("history", "--json");
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as HistoryRun[];
}

describe("an import that dies does not take si serve with it", () => {
  let farm: GatedFarm;
  let rootfs2: Buffer;
  let src: string;

  beforeAll(async () => {
    ({ farm, src, rootfs2 } = await farmWithInputs("si-crash-inputs-"));
  });
  afterAll(() => farm?.close());

  /** An instance with version 1 published by hand; the farm then still offers version 1. */
  async function instance(schedule?: string): Promise<Instance> {
    farm.files.set("/rootfs.tar.xz", readFileSync(tarXz(join(src, "v1"), join(src, "rootfs-v1.tar.xz"), ["system"])));
    farm.files.set("/rootfs.version", "1");
    farm.files.set("/device.tar.xz", readFileSync(tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"])));
    farm.files.set("/device.version", "1");
    const inst = await standardInstance(farm.url, {
      global: [...(schedule ? [`import_schedule = ${schedule}`] : []), "http_timeout = 60", "http_retries = 0"],
      fullcount: null,
      files: ["ubports", "device", "version"],
    });
    const first = await inst.siAsync("import-images");
    expect(first.status, first.stdout + first.stderr).toBe(0);
    return inst;
  }

  function serve(inst: Instance, ...extra: string[]): Serve {
    return spawnServe(
      inst.config,
      "--address",
      "127.0.0.1",
      "--http-port",
      "0",
      "--https-port",
      "off",
      "--admin-port",
      "0",
      "--workers",
      "1",
      ...extra,
    );
  }

  async function urls(s: Serve): Promise<{ admin: string; pub: string }> {
    const admin = String((await s.waitFor((l) => l.event === "admin-listening", "the admin listener")).url);
    const pub = String((await s.waitFor((l) => l.event === "listening" && l.listener === "http", "the public listener")).url);
    return { admin, pub };
  }

  async function stop(s: Serve): Promise<void> {
    s.child.kill("SIGTERM");
    expect(await s.exit).toBe(0);
    expect(s.stderr()).toBe("");
  }

  it("SIGKILL of the scheduled import's process: serving answers during and after, the run is failed with the signal, the next tick publishes", async () => {
    const inst = await instance("*/2 * * * * *");
    const s = serve(inst);
    try {
      const { admin, pub } = await urls(s);
      const waiting = farm.hold();
      farm.files.set("/rootfs.tar.xz", rootfs2);
      farm.files.set("/rootfs.version", "2");
      await waiting;
      // The import runs in a process of its own, recorded in the history with its pid (and
      // left running by `si history`, which marks only runs whose process is gone).
      const running = (await history(inst))[0];
      expect(running).toMatchObject({ trigger: "schedule", outcome: "running" });
      const pid = running.pid!;
      expect(pid).toBeGreaterThan(0);
      expect(pid).not.toBe(s.child.pid);
      await s.waitFor((l) => l.msg === "import-images child process started" && l.pid === pid, "the log line of the child");
      expect((await get(new URL("/channels.json", pub).href)).status).toBe(200);
      expect(await metric(admin, "si_scheduler_import_running")).toBe(1);

      process.kill(pid, "SIGKILL");
      const reason = `import process ${pid} was killed by SIGKILL (out of memory, or killed by hand)`;
      const failed = await s.waitFor(msgStarts("scheduled import-images failed: "), "the failed run");
      expect(failed).toMatchObject({ level: "error", component: "scheduler", msg: `scheduled import-images failed: ${reason}` });
      expect(s.child.exitCode).toBeNull();
      const index = await get(new URL("/devel/mako/index.json", pub).href);
      expect(index.status).toBe(200);
      expect(JSON.parse(index.body)).toMatchObject({ images: [{ version: 1 }] });

      // The next tick runs as usual (the lock went with the killed process) and publishes.
      farm.release();
      const published = await s.waitFor(msgStarts("published version 2"), "the next scheduled publication");
      expect(published).toMatchObject({ component: "scheduler", trigger: "schedule", channel: "devel", device: "mako", version: 2 });
      await s.waitFor(msgStarts("scheduled import-images finished: ok, 1 published"), "the end of the next run");

      const runs = await history(inst);
      const killed = runs.find((r) => r.pid === pid)!;
      expect(killed).toMatchObject({ trigger: "schedule", outcome: "failed", error: reason });
      const after = runs.filter((r) => r.id > killed.id);
      expect(after.some((r) => r.outcome === "ok" && r.devices.some((d) => d.outcome === "published" && d.version === 2))).toBe(true);
      // Nothing was left behind: no interrupted run; only the newest may be running (a later tick).
      expect(runs.filter((r) => r.outcome === "interrupted")).toEqual([]);
      expect(runs.slice(1).filter((r) => r.outcome === "running")).toEqual([]);

      expect(await metric(admin, "si_import_runs_total", { trigger: "schedule", outcome: "failed" })).toBe(1);
      expect(await metric(admin, "si_last_published_version", { channel: "devel", device: "mako" })).toBe(2);
      const page = await get(admin);
      expect(page.body).toContain(reason);
      await stop(s);
    } finally {
      s.child.kill("SIGKILL");
      farm.release();
    }
  });

  it("an uncaught error in the import's process (SI_IMPORT_CHILD_FAULT_FILE): failed with the error's message, serving goes on, the next tick publishes", async () => {
    const inst = await instance("*/2 * * * * *");
    const fault = join(inst.base, "import-fault");
    writeFileSync(fault, "throw");
    farm.files.set("/rootfs.tar.xz", rootfs2);
    farm.files.set("/rootfs.version", "2");
    process.env.SI_IMPORT_CHILD_FAULT_FILE = fault;
    let s: Serve;
    try {
      s = serve(inst);
    } finally {
      delete process.env.SI_IMPORT_CHILD_FAULT_FILE;
    }
    try {
      const { admin, pub } = await urls(s);
      const failed = await s.waitFor(msgStarts("scheduled import-images failed: "), "the failed run");
      const pid = Number(s.lines.find((l) => l.msg === "import-images child process started")!.pid);
      const reason = `import process ${pid} exited with status 1: test fault (SI_IMPORT_CHILD_FAULT_FILE): uncaught error in the import`;
      expect(failed.msg).toBe(`scheduled import-images failed: ${reason}`);
      // The child's own last words, and its stderr (the stack), are in the server log.
      expect(s.lines.find((l) => l.event === "import-crash")).toMatchObject({
        level: "error",
        component: "scheduler",
        trigger: "schedule",
      });
      expect(String(s.lines.find((l) => typeof l.stderr === "string")?.stderr)).toMatch(/^Error: test fault/m);
      expect(existsSync(fault)).toBe(false);
      expect(s.child.exitCode).toBeNull();
      expect((await get(new URL("/channels.json", pub).href)).status).toBe(200);

      await s.waitFor(msgStarts("published version 2"), "the next scheduled publication");
      await s.waitFor(msgStarts("scheduled import-images finished: ok, 1 published"), "the end of the next run");
      expect((await history(inst)).find((r) => r.pid === pid)).toMatchObject({ trigger: "schedule", outcome: "failed", error: reason });
      expect(await metric(admin, "si_import_runs_total", { trigger: "schedule", outcome: "failed" })).toBe(1);
      await stop(s);
    } finally {
      s.child.kill("SIGKILL");
    }
  });

  it("si import-images killed with SIGKILL mid-run: si history, /metrics and the dashboard show the run interrupted", async () => {
    const inst = await instance();
    const waiting = farm.hold();
    farm.files.set("/rootfs.tar.xz", rootfs2);
    farm.files.set("/rootfs.version", "2");
    const imp = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", inst.config, "import-images"], { stdio: "ignore" });
    const gone = new Promise((r) => imp.on("exit", r));
    let s: Serve | undefined;
    try {
      await waiting;
      imp.kill("SIGKILL");
      await gone;
      // The first command to open the history afterwards marks the run.
      const [run] = await history(inst);
      expect(run).toMatchObject({
        trigger: "cli",
        outcome: "interrupted",
        pid: imp.pid,
        error: `interrupted: process ${imp.pid} no longer exists; the run never finished (killed, crashed, out of memory)`,
      });
      const text = await inst.siAsync("history", "--limit", "1");
      expect(text.stdout).toMatch(
        new RegExp(`^#${run.id} \\S+ cli: interrupted, \\d+\\.\\d s — interrupted: process ${imp.pid} no longer exists`),
      );

      s = serve(inst, "--no-schedule");
      const { admin } = await urls(s);
      expect(await metric(admin, "si_import_runs_total", { trigger: "cli", outcome: "interrupted" })).toBe(1);
      expect(await metric(admin, "si_import_runs_total", { trigger: "cli", outcome: "running" })).toBeUndefined();
      expect(await metric(admin, "si_last_import_run_success")).toBe(0);
      expect((await get(admin)).body).toMatch(
        new RegExp(`#${run.id}<[\\s\\S]*?>interrupted<[\\s\\S]*?interrupted: process ${imp.pid} no longer exists`),
      );
      await stop(s);
    } finally {
      s?.child.kill("SIGKILL");
      imp.kill("SIGKILL");
      farm.release();
    }
    // The lock went with the killed process: the next import publishes version 2.
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/published version 2/);
  });

  it("si import-images stopped with SIGTERM (a timer being stopped) records its run as interrupted by that signal", async () => {
    const inst = await instance();
    const waiting = farm.hold();
    farm.files.set("/rootfs.tar.xz", rootfs2);
    farm.files.set("/rootfs.version", "2");
    const imp = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", inst.config, "import-images"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    imp.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    const status = new Promise<number | null>((r) => imp.on("exit", (code) => r(code)));
    try {
      await waiting;
      imp.kill("SIGTERM");
      expect(await status).toBe(143);
      expect(
        out
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .at(-1),
      ).toMatchObject({ level: "error", msg: "SIGTERM: import-images interrupted" });
      expect((await history(inst))[0]).toMatchObject({
        trigger: "cli",
        outcome: "interrupted",
        pid: imp.pid,
        error: "interrupted: si import-images got SIGTERM",
      });
    } finally {
      imp.kill("SIGKILL");
      farm.release();
    }
  });
});
