/**
 * The 1,000-device simulation (issue 17 "Done when"): a real tree imported with
 * `rollout = 5%@0h, 25%@24h, 100%@72h` (version 2 published at 5 %), served by si serve over
 * real HTTP; the rollout ticks on a fake clock to 25 % and 100 %. At each step 1,000 device
 * models, each with its own machine id and source address, poll and choose with the client's
 * own rules; those offered version 2 download its version tarball.
 *
 * Asserted: the devices offered the image are exactly those whose phase (client-protocol §6.3,
 * randint(0, 100): 101 values, so P % offers (P+1)/101 of the fleet on average) is <= the
 * step, and their share is within ±2 points of the step; no device loses the image between
 * steps; each raise is a signed commit (real gpg, the client's own check) recorded in the
 * history with trigger `rollout`. The same traffic also goes to nginx serving the same tree
 * with the generated site (`si nginx-site`, its `si_json` access log): the adoption figures
 * (src/fleet, `si fleet report`) from si serve's access log and from nginx's agree exactly.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelsDoc } from "../../src/model/channels.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { nginxSite } from "../../src/deploy/nginx-site.js";
import { readAccessLogs, type BadLines } from "../../src/fleet/parse.js";
import { fleetReport } from "../../src/fleet/report.js";
import { tickRollouts } from "../../src/rollout/tick.js";
import { jsonLineLogger, type ServerLogger } from "../../src/server/log.js";
import { startServer, type RunningServer } from "../../src/server/start.js";
import { ImportHistory } from "../../src/state/history.js";
import { RolloutStore } from "../../src/state/rollouts.js";
import { devicePhase } from "../../src/verify/py-random.js";
import { clientVerify, unpackKeyring } from "../helpers/device-gpg.js";
import { runNginx, type RunningNginx } from "../deploy/nginx-run.js";
import { within } from "../server/fixtures.js";
import { buildRolloutTree, phases, type RolloutTree } from "./fixture.js";
import { get, makeFleet, poll, pool, type SimDevice } from "./fleet-sim.js";

const HOUR = 3_600_000;
const FLEET = 1000;

describe("a staged rollout to 1,000 simulated devices", () => {
  let t: RolloutTree;
  let server: RunningServer;
  let port: number;
  let nginx: RunningNginx;
  let logger: ServerLogger;
  let scratch: string;
  let siLog: string;
  let nginxLog: string;
  const devices: SimDevice[] = makeFleet(FLEET, 1);

  beforeAll(async () => {
    t = await buildRolloutTree();
    await t.importV2();
    scratch = mkdtempSync(join(tmpdir(), "si-rollout-sim-"));
    siLog = join(scratch, "si-serve.log");
    nginxLog = join(scratch, "nginx-access.json");
    logger = jsonLineLogger((lines) => appendFileSync(siLog, lines + "\n"));
    server = await startServer(t.config, { address: "127.0.0.1", httpPort: 0, httpsPort: null, logger });
    port = server.httpPort!;
    const site = nginxSite({
      serverName: "_",
      root: t.config.publish_path,
      httpPort: 80,
      httpsPort: null,
      tlsCert: "",
      tlsKey: "",
      accessLog: nginxLog,
    });
    nginx = await runNginx(site, { prefix: join(scratch, "nginx"), publish: t.config.publish_path, cert: "", key: "" });
  }, 180_000);
  afterAll(async () => {
    await server?.close();
    nginx?.stop();
    await t?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** channels.json and the index it names, as served, after checking both signatures as a device does. */
  async function servedIndex(port: number): Promise<IndexDoc> {
    const fetchTo = async (path: string) => {
      const r = await get(port, path, {});
      expect(r.status, path).toBe(200);
      const file = join(scratch, `${port}${path.replace(/\//g, "_")}`);
      writeFileSync(file, r.body);
      return file;
    };
    const signing = unpackKeyring(await fetchTo("/gpg/image-signing.tar.xz"), scratch).gpg!;
    const channels = await fetchTo("/channels.json");
    const channelsAsc = await fetchTo("/channels.json.asc");
    expect(clientVerify(channelsAsc, channels, [signing])).toEqual({ ok: true, why: "" });
    const doc = JSON.parse((await get(port, "/channels.json", {})).body.toString("utf8")) as ChannelsDoc;
    const indexPath = doc.devel.devices.mako.index;
    const index = await fetchTo(indexPath);
    expect(clientVerify(await fetchTo(`${indexPath}.asc`), index, [signing])).toEqual({ ok: true, why: "" });
    // The conventional index.json too (the installer reads it), verified with real gpg.
    expect(clientVerify(await fetchTo("/devel/mako/index.json.asc"), await fetchTo("/devel/mako/index.json"), [signing]).ok).toBe(true);
    return JSON.parse((await get(port, indexPath, {})).body.toString("utf8")) as IndexDoc;
  }

  it("offers version 2 to the devices whose phase is within each step, and to more at every step", async () => {
    const rollout = RolloutStore.with(t.config.state_path, (s) => s.latest("devel", "mako"))!;
    expect(rollout).toMatchObject({ version: 2, state: "active", step: 0 });
    const start = rollout.startedAt.getTime();
    let fakeNow = new Date(start + 60_000);
    const tick = () => tickRollouts({ config: t.config, now: () => fakeNow, counts: () => ({ started: 0, completed: 0 }) });

    // The seed of a non-alias channel starts with "None"; max_target is 2 (client-protocol §6.3).
    const phase = new Map(devices.map((d) => [d.n, devicePhase(null, 2, d.machineId)]));
    const offered: Set<number>[] = [];
    const downloaded = new Set<number>();
    for (const [hours, pct] of [
      [0, 5],
      [24, 25],
      [72, 100],
    ] as const) {
      fakeNow = new Date(start + hours * HOUR + 60_000);
      const report = await tick();
      if (hours === 0) expect(report.actions).toEqual([]);
      else
        expect(report.actions).toEqual([
          { channel: "devel", device: "mako", version: 2, action: "raised", percentage: pct, from: hours === 24 ? 5 : 25 },
        ]);
      // The raise is committed: the index as served (within the server's re-check bound) has it.
      const served = await within(5000, `index at ${pct}%`, async () => {
        const doc = await servedIndex(port);
        return doc.images.filter((i) => i.version === 2).every((i) => (i["phased-percentage"] ?? 100) === pct) ? doc : undefined;
      });
      // nginx serves the same signed documents (it reads the files: no re-check bound).
      expect(await servedIndex(nginx.http)).toEqual(served);
      // Every image of version 2 (full and delta) carries it; 100 drops the key.
      expect(phases(served)).toEqual([
        ["full", 1, null, 100],
        ["full", 2, null, pct],
        ["delta", 2, 1, pct],
      ]);
      expect(served.images.some((i) => i.version === 2 && pct === 100 && "phased-percentage" in i)).toBe(false);

      // Each device polls si serve, then nginx the same way (the same traffic in both logs).
      const results = await pool(devices, 32, async (d) => {
        const first = await poll(port, d, "devel", "mako", !downloaded.has(d.n));
        expect(await poll(nginx.http, d, "devel", "mako", !downloaded.has(d.n))).toEqual(first);
        return first;
      });
      const now = new Set<number>();
      results.forEach((r, n) => {
        if (r.target === 2) now.add(n);
        if (r.downloaded) downloaded.add(n);
      });
      for (const r of results) expect(r.target === null || r.target === 2).toBe(true);
      // Exactly the client's rule: phase <= percentage (and > 0 percentage).
      const expected = devices.filter((d) => phase.get(d.n)! <= pct).map((d) => d.n);
      expect([...now].sort((a, b) => a - b)).toEqual(expected);
      const share = (100 * now.size) / FLEET;
      expect(
        Math.abs(share - pct),
        `${now.size} of ${FLEET} offered at ${pct}% (expected about ${((pct + 1) / 101) * 100}%)`,
      ).toBeLessThanOrEqual(2);
      // No device loses the image between steps.
      if (offered.length) for (const n of offered[offered.length - 1]) expect(now.has(n), `device ${n} lost the image`).toBe(true);
      offered.push(now);
    }
    expect(offered.map((s) => s.size)).toEqual([offered[0].size, offered[1].size, FLEET]);
    expect(downloaded.size).toBe(FLEET);
    expect(RolloutStore.with(t.config.state_path, (s) => s.latest("devel", "mako"))).toMatchObject({ state: "completed", step: 2 });

    // Two raises, each one run of the history with trigger "rollout".
    const history = ImportHistory.open(t.config.state_path);
    try {
      const runs = history.listRuns(50).filter((r) => r.trigger === "rollout");
      expect(runs.map((r) => [r.outcome, r.devices.map((d) => [d.channel, d.device, d.outcome, d.version])])).toEqual([
        ["ok", [["devel", "mako", "published", 2]]],
        ["ok", [["devel", "mako", "published", 2]]],
      ]);
    } finally {
      history.close();
    }
    // A tick with nothing due changes nothing.
    fakeNow = new Date(start + 200 * HOUR);
    expect((await tick()).actions).toEqual([]);
  }, 300_000);

  it("the adoption figures from si serve's access log and from nginx's agree exactly", async () => {
    logger.flush?.();
    const report = async (file: string, format: "si" | "json") => {
      const bad: BadLines = { count: 0, first: [] };
      const rows = await fleetReport(readAccessLogs([file], format, bad), { publishPath: t.config.publish_path });
      expect(bad.count, JSON.stringify(bad.first)).toBe(0);
      return rows;
    };
    const fromSi = await report(siLog, "si");
    const fromNginx = await report(nginxLog, "json");
    expect(fromNginx).toEqual(fromSi);
    // Every device downloaded version 2 once from each server, whole, by whichever path it chose.
    const v2 = fromSi.filter((r) => r.channel === "devel" && r.device === "mako" && r.version === 2);
    expect(v2.reduce((n, r) => n + r.started, 0)).toBe(FLEET);
    expect(v2.reduce((n, r) => n + r.completed, 0)).toBe(FLEET);
    // Distinct polling clients: the 1,000 devices and the test's own signature checks.
    expect(v2[0].clients).toBe(FLEET + 1);
  }, 120_000);
});
