/**
 * Issue 7's "done when": with import_schedule set and a build farm whose input changes,
 * `si serve` publishes the new image on its own, the dashboard shows it, /metrics counts it,
 * and a `si import-images` started by hand meanwhile exits 0 saying the lock is busy.
 * Once with a seconds field and two serve workers (request counts cross the IPC channel),
 * once with the plain every-minute expression and one process.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ImportHistory } from "../../src/state/history.js";
import { parseMetrics } from "../dashboard/metrics-parse.js";
import type { Instance } from "../helpers/instance.js";
import { standardInstance, tarXz } from "../importer/fixtures.js";
import { get, spawnServe } from "../helpers/serve-process.js";
import { farmWithInputs, type GatedFarm } from "./gated-farm.js";

describe("si serve with import_schedule", () => {
  let farm: GatedFarm;
  let rootfs2: Buffer;
  let src: string;

  beforeAll(async () => {
    ({ farm, src, rootfs2 } = await farmWithInputs("si-sched-inputs-"));
  });
  afterAll(() => farm?.close());

  async function instance(schedule: string): Promise<Instance> {
    farm.files.set("/rootfs.tar.xz", readFileSync(tarXz(join(src, "v1"), join(src, "rootfs-v1.tar.xz"), ["system"])));
    farm.files.set("/rootfs.version", "1");
    farm.files.set("/device.tar.xz", readFileSync(tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"])));
    farm.files.set("/device.version", "1");
    const inst = await standardInstance(farm.url, {
      global: [`import_schedule = ${schedule}`, "http_timeout = 60", "http_retries = 0"],
      fullcount: null,
      files: ["ubports", "device", "version"],
    });
    const first = await inst.siAsync("import-images");
    expect(first.status, first.stdout + first.stderr).toBe(0);
    return inst;
  }

  async function scenario(schedule: string, workers: string, waitForSkippedTick: boolean): Promise<void> {
    const inst = await instance(schedule);
    const s = spawnServe(
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
      workers,
    );
    try {
      const adminUrl = String((await s.waitFor((l) => l.event === "admin-listening", "the admin listener")).url);
      const publicUrl = String((await s.waitFor((l) => l.event === "listening" && l.listener === "http", "the public listener")).url);
      expect(new URL(adminUrl).port).not.toBe(new URL(publicUrl).port);
      await s.waitFor((l) => l.component === "scheduler" && String(l.msg).startsWith("import-images scheduled at"), "the scheduler");

      // The build farm has a new rootfs; hold its download so the scheduled run keeps the lock.
      const waiting = farm.hold();
      farm.files.set("/rootfs.tar.xz", rootfs2);
      farm.files.set("/rootfs.version", "2");
      await waiting;
      const byHand = await inst.siAsync("import-images");
      expect(byHand.status, byHand.stderr).toBe(0);
      // The busy message names the holder (issue 15 item 4): the scheduled run's child process.
      expect(byHand.stdout).toMatch(
        /^Something else holds the global lock \(import-images \(scheduled\), pid \d+, since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\. exiting\.\n$/,
      );
      if (waitForSkippedTick) {
        await s.waitFor((l) => l.msg === "the previous scheduled import is still running, skipped", "a skipped tick");
      }
      farm.release();

      const published = await s.waitFor(
        (l) => typeof l.msg === "string" && l.msg.startsWith("published version 2"),
        "the scheduled publication",
      );
      expect(published).toMatchObject({
        level: "info",
        component: "scheduler",
        trigger: "schedule",
        channel: "devel",
        device: "mako",
        version: 2,
      });
      await s.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("tree verification: "), "the verification after the import");

      const index = JSON.parse(readFileSync(join(inst.publish, "devel/mako/index.json"), "utf8")) as {
        images: { version: number; type: string }[];
      };
      expect(index.images.filter((i) => i.type === "full").map((i) => i.version)).toEqual([1, 2]);

      const page = await get(adminUrl);
      expect(page.status).toBe(200);
      expect(page.body).toMatch(/<h4>mako [\s\S]*?<tbody><tr class="latest"><td class="num"><strong>2<\/strong>/);
      expect(page.body).toMatch(/devel\/mako: published version 2 \(/);
      expect(page.body).toMatch(/<td class="hide-sm">schedule<\/td>/);
      expect(page.body).toMatch(/<section id="verification">[\s\S]*badge ok">OK</);

      for (const p of ["/channels.json", "/channels.json", "/devel/mako/index.json", "/nothing-here"])
        await get(new URL(p, publicUrl).href);
      const samples = parseMetrics((await get(new URL("/metrics", adminUrl).href)).body);
      const value = (name: string, labels: Record<string, string> = {}) =>
        samples.find((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v))?.value;
      expect(value("si_published_images_total", { channel: "devel", device: "mako" })).toBe(2);
      expect(value("si_last_published_version", { channel: "devel", device: "mako" })).toBe(2);
      expect(value("si_import_runs_total", { trigger: "schedule", outcome: "ok" })).toBeGreaterThanOrEqual(1);
      expect(value("si_import_runs_total", { trigger: "cli", outcome: "ok" })).toBe(1);
      expect(value("si_scheduler_enabled")).toBe(1);
      expect(value("si_http_requests_total", { class: "channels", status: "200" })).toBe(2);
      expect(value("si_http_requests_total", { class: "index", status: "200" })).toBe(1);
      expect(value("si_http_requests_total", { class: "other", status: "404" })).toBe(1);

      // The by-hand run recorded nothing; no two recorded runs overlap.
      const h = ImportHistory.open(inst.state);
      const runs = h.listRuns(1000).reverse();
      h.close();
      expect(runs.filter((r) => r.trigger === "cli")).toHaveLength(1);
      expect(
        runs.filter((r) => r.trigger === "schedule").some((r) => r.devices.some((d) => d.outcome === "published" && d.version === 2)),
      ).toBe(true);
      for (let i = 1; i < runs.length; i++) {
        if (runs[i - 1].finished_at === null) continue; // the run in progress right now
        expect(Date.parse(runs[i].started_at)).toBeGreaterThanOrEqual(Date.parse(runs[i - 1].finished_at!));
      }

      s.child.kill("SIGTERM");
      expect(await s.exit).toBe(0);
      expect(s.lines.at(-1)).toMatchObject({ event: "stopped" });
      expect(s.stderr()).toBe("");
    } finally {
      s.child.kill("SIGKILL");
      farm.release();
    }
  }

  it("every 5 seconds, two workers: publishes the new image, dashboard and metrics show it, a manual import meanwhile says the lock is busy", async () => {
    await scenario("*/5 * * * * *", "2", true);
  });

  it("every minute ('* * * * *'), one process: the same within two minutes", { timeout: 200_000 }, async () => {
    await scenario("* * * * *", "1", false);
  });

  it("SIGTERM during a scheduled import: gives it the grace period, exits 0, marks the run interrupted, frees the lock", async () => {
    const inst = await instance("*/2 * * * * *");
    const s = spawnServe(
      inst.config,
      "--address",
      "127.0.0.1",
      "--http-port",
      "0",
      "--https-port",
      "off",
      "--admin-port",
      "off",
      "--workers",
      "1",
    );
    try {
      await s.waitFor((l) => l.event === "listening", "the public listener");
      const waiting = farm.hold();
      farm.files.set("/rootfs.tar.xz", rootfs2);
      farm.files.set("/rootfs.version", "2");
      await waiting;
      s.child.kill("SIGTERM");
      expect(await s.exit).toBe(0);
      expect(s.lines.some((l) => l.msg === "scheduled import-images interrupted by the server stopping")).toBe(true);
      expect(s.lines.at(-1)).toMatchObject({ event: "stopped" });
      const h = ImportHistory.open(inst.state);
      const [last] = h.listRuns(1);
      h.close();
      expect(last).toMatchObject({ trigger: "schedule", outcome: "failed", error: "interrupted: si serve stopped during the import" });
    } finally {
      s.child.kill("SIGKILL");
      farm.release();
    }
    // The lock went with the process: an import by hand runs and publishes version 2.
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/published version 2/);
  });

  it("--no-schedule turns the scheduler off; an invalid import_schedule stops start-up naming the key", async () => {
    const inst = await instance("*/2 * * * * *");
    const s = spawnServe(
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
      "--no-schedule",
    );
    try {
      const off = await s.waitFor((l) => l.event === "scheduler-off", "the scheduler-off line");
      expect(off.msg).toBe("No scheduled imports (--no-schedule)");
      const admin = String((await s.waitFor((l) => l.event === "admin-listening", "the admin listener")).url);
      const m = parseMetrics((await get(new URL("/metrics", admin).href)).body);
      expect(m.find((x) => x.name === "si_scheduler_enabled")?.value).toBe(0);
      s.child.kill("SIGTERM");
      expect(await s.exit).toBe(0);
      expect(s.lines.some((l) => l.component === "scheduler")).toBe(false);
    } finally {
      s.child.kill("SIGKILL");
    }
    writeFileSync(inst.config, readFileSync(inst.config, "utf8").replace(/import_schedule = .*/, "import_schedule = 0 25 * * *"));
    const bad = await inst.siAsync("serve", "--http-port", "0", "--https-port", "off", "--admin-port", "0", "--workers", "1");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`^si: error: Invalid import_schedule '0 25 \\* \\* \\*' in ${inst.config}: .*hour`));
  });
});
