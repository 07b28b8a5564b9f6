/**
 * The same device traffic (index polls from three clients, a full download, a delta
 * download, a download cut short, a Range resume) sent to a real `si serve` and to a real
 * nginx running the generated site over the same tree: `fleetReport` of si serve's log, of
 * nginx's si_json log, and the live counts si serve wrote to the state database agree, and
 * are what the traffic was. /metrics lines pass `promtool check metrics`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { nginxSite } from "../../src/deploy/nginx-site.js";
import { fleetMetricLines } from "../../src/fleet/metrics.js";
import { readAccessLogs, type BadLines, type LogFormat } from "../../src/fleet/parse.js";
import { fleetReport, type AdoptionRow } from "../../src/fleet/report.js";
import { downloadCounts, liveReport } from "../../src/fleet/store.js";
import { startServer } from "../../src/server/start.js";
import { ensureSelfSignedCertificate } from "../../src/server/tls.js";
import { runNginx, type RunningNginx } from "../deploy/nginx-run.js";
import { runSi } from "../helpers/instance.js";
import { spawnServe } from "../helpers/serve-process.js";
import { collectingLogger, eventually, fetchRaw, type Target } from "../server/fixtures.js";
import { fleetTree, PATHS, ua, type FleetTree } from "./fixture.js";

/** GETs `path`, takes the first chunk of the body and hangs up. */
function cutShort(port: number, path: string, userAgent: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { "User-Agent": userAgent }, agent: false }, (res) => {
      res.once("data", (c: Buffer) => {
        req.destroy();
        resolve(c.length);
      });
    });
    req.on("error", (err) => (req.destroyed ? undefined : reject(err)));
    req.end();
  });
}

/** The traffic of the test, against one server. */
async function traffic(target: Target, t: FleetTree): Promise<void> {
  const get = async (path: string, userAgent: string, headers: Record<string, string> = {}, want = 200) => {
    const r = await fetchRaw(target, "GET", path, { "User-Agent": userAgent, ...headers });
    expect(r.status, path).toBe(want);
    return r;
  };
  // Polls: three clients (one twice, once through the content-named copy), a HEAD that does not count.
  await get("/devel/mako/index.json", ua(1));
  await get(t.indexCopy(), ua(1));
  await get(t.indexCopy(), ua(2));
  await get("/devel/mako/index.json", "ubports-installer/0.9");
  expect((await fetchRaw(target, "HEAD", "/devel/mako/index.json", { "User-Agent": "someone-else" })).status).toBe(200);
  // A device on build 0 takes full 2: every file of it (only the rootfs is the marker).
  for (const p of [PATHS.rootfs2, PATHS.device, PATHS.version2]) await get(p, ua(0));
  // A device on build 1 takes the delta.
  for (const p of [PATHS.delta, PATHS.version2]) await get(p, ua(1));
  // A third one starts full 2 and hangs up.
  expect(await cutShort(target.port, PATHS.rootfs2, ua(0))).toBeGreaterThan(0);
  // A download tool fetches full 1 in two ranges: started by the first, completed by the second.
  const size1 = statSync(join(t.pub, PATHS.rootfs1)).size;
  const head = await get(PATHS.rootfs1, "aria2/1.36", { Range: "bytes=0-1048575" }, 206);
  expect(head.body.length).toBe(1048576);
  const rest = await get(PATHS.rootfs1, "aria2/1.36", { Range: "bytes=1048576-" }, 206);
  expect(rest.body.length).toBe(size1 - 1048576);
  // HEAD and 404 count for nothing.
  expect((await fetchRaw(target, "HEAD", PATHS.rootfs1, { "User-Agent": ua(0) })).status).toBe(200);
  expect((await fetchRaw(target, "GET", "/pool/missing.tar.xz", { "User-Agent": ua(0) })).status).toBe(404);
}

const EXPECTED: AdoptionRow[] = [
  { channel: "devel", device: "mako", version: 2, kind: "full", base: null, started: 2, completed: 1, clients: 3 },
  { channel: "devel", device: "mako", version: 2, kind: "delta", base: 1, started: 1, completed: 1, clients: 3 },
  { channel: "devel", device: "mako", version: 1, kind: "full", base: null, started: 1, completed: 1, clients: 3 },
];

async function reportOf(file: string, format: LogFormat, t: FleetTree): Promise<{ rows: AdoptionRow[]; bad: BadLines }> {
  const bad: BadLines = { count: 0, first: [] };
  const rows = await fleetReport(readAccessLogs([file], format, bad), { publishPath: t.pub });
  return { rows, bad };
}

describe("adoption from si serve and from nginx, over the same traffic", () => {
  let t: FleetTree;
  let nginx: RunningNginx;
  let nginxDir: string;
  let siLog: string;

  beforeAll(async () => {
    t = await fleetTree();
    // si serve, in process, with its access lines collected as it would print them.
    const logger = collectingLogger();
    const server = await startServer(t.config, { address: "127.0.0.1", httpPort: 0, httpsPort: null, logger });
    await traffic({ port: server.httpPort! }, t);
    const accessLines = () => logger.entries.filter((e) => e.event === "access");
    await eventually(() => (accessLines().length >= 15 ? true : undefined), "si serve's access lines");
    await server.close();
    siLog = join(t.inst.base, "si-serve.log");
    writeFileSync(siLog, logger.entries.map((e) => JSON.stringify(e)).join("\n") + "\n");

    // nginx with the generated site: si_json, plus nginx's combined format next to it.
    nginxDir = join(t.inst.base, "nginx");
    const cert = join(t.inst.base, "tls/cert.pem");
    const key = join(t.inst.base, "tls/key.pem");
    await ensureSelfSignedCertificate(cert, key, ["localhost"]);
    const site = nginxSite({
      serverName: "_",
      root: "/srv/system-image/www",
      httpPort: 80,
      httpsPort: null,
      tlsCert: "",
      tlsKey: "",
      accessLog: join(nginxDir, "access.json"),
    }).replace(/(\n\s*access_log [^\n]*si_json;)/, `$1\n    access_log ${join(nginxDir, "access.log")} combined;`);
    nginx = await runNginx(site, { prefix: nginxDir, publish: t.pub, cert, key });
    // runNginx's readiness probe is a HEAD of /, which the logs hold too (a 404, counted for nothing).
    await traffic({ port: nginx.http }, t);
    const lines = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean).length : 0);
    await eventually(() => (lines(join(nginxDir, "access.json")) >= 16 ? true : undefined), "nginx's access lines");
  }, 240_000);

  afterAll(() => {
    nginx?.stop();
    if (t) rmSync(t.inst.base, { recursive: true, force: true });
  });

  it("counts the traffic the same from si serve's log, nginx's si_json log and the live database", async () => {
    const fromSi = await reportOf(siLog, "si", t);
    const fromNginx = await reportOf(join(nginxDir, "access.json"), "json", t);
    expect(fromSi.bad.count).toBe(0);
    expect(fromNginx.bad.count).toBe(0);
    // The download cut short is on record as such in both logs.
    for (const [file, format] of [
      [siLog, "si"],
      [join(nginxDir, "access.json"), "json"],
    ] as const) {
      const cut = [];
      for await (const r of readAccessLogs([file], format, { count: 0, first: [] })) if (r.path === PATHS.rootfs2 && r.aborted) cut.push(r);
      expect(cut, file).toHaveLength(1);
      expect(cut[0].bytes, file).toBeLessThan(statSync(join(t.pub, PATHS.rootfs2)).size);
    }
    expect(fromSi.rows).toEqual(EXPECTED);
    expect(fromNginx.rows).toEqual(EXPECTED);
    expect(liveReport(t.config.state_path, t.pub)).toEqual(EXPECTED);
    expect(
      downloadCounts(t.config.state_path, { channel: "devel", device: "mako", version: 2, since: new Date(Date.now() - 3_600_000) }),
    ).toEqual({
      started: 3,
      completed: 2,
    });
    expect(
      downloadCounts(t.config.state_path, { channel: "devel", device: "mako", version: 2, since: new Date(Date.now() + 7_200_000) }),
    ).toEqual({
      started: 0,
      completed: 0,
    });
  });

  it("keeps the salt private and stores no address", () => {
    const salt = join(t.config.state_path, "fleet-salt");
    expect(statSync(salt).mode & 0o777).toBe(0o600);
    const db = readFileSync(join(t.config.state_path, "history.sqlite"));
    expect(db.includes("127.0.0.1")).toBe(false);
  });

  it("from nginx's combined log, counts what a log without Range can show", async () => {
    const { rows, bad } = await reportOf(join(nginxDir, "access.log"), "combined", t);
    expect(bad.count).toBe(0);
    // The two ranges of full 1 carried part of the file each: neither counts.
    expect(rows).toEqual(EXPECTED.map((r) => (r.version === 1 ? { ...r, started: 0, completed: 0 } : r)));
  });

  it("prints the same rows through si fleet report, from the database and from the logs", () => {
    const live = runSi(["--config", t.inst.config, "fleet", "report", "--json"]);
    expect(live.stderr).toBe("");
    expect(JSON.parse(live.stdout)).toEqual(EXPECTED);
    writeFileSync(join(t.inst.base, "mixed.log"), readFileSync(join(nginxDir, "access.json"), "utf8") + "garbage line\n");
    const logs = runSi(["--config", t.inst.config, "fleet", "report", "--access-log", join(t.inst.base, "mixed.log")]);
    expect(logs.status).toBe(0);
    expect(logs.stderr).toMatch(/mixed\.log:\d+: skipped: not an nginx combined line/);
    expect(logs.stdout.split("\n").slice(0, 4)).toEqual([
      "CHANNEL  DEVICE  VERSION  KIND   BASE  STARTED  COMPLETED  CLIENTS",
      "devel    mako          2  full      -        2          1        3",
      "devel    mako          2  delta     1        1          1        3",
      "devel    mako          1  full      -        1          1        3",
    ]);
    const missing = runSi(["--config", t.inst.config, "fleet", "report", "--access-log", join(t.inst.base, "nope.log")]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/Cannot read access log .*nope\.log: ENOENT/);
  });

  it("exposes bounded metrics that promtool accepts, folding removed versions into other", async () => {
    const check = (lines: string[]) => execFileSync("promtool", ["check", "metrics"], { input: lines.join("\n") + "\n", encoding: "utf8" });
    const lines = fleetMetricLines(t.config.state_path, t.pub);
    check(lines);
    expect(lines).toContain('si_fleet_downloads_started_total{channel="devel",device="mako",version="2",kind="full",base=""} 2');
    expect(lines).toContain('si_fleet_downloads_completed_total{channel="devel",device="mako",version="2",kind="delta",base="1"} 1');
    expect(lines).toContain('si_fleet_polling_clients{channel="devel",device="mako"} 3');
    // Version 1 leaves the index: its counts move to version="other".
    const dev = await t.tree.getDevice("devel", "mako");
    await dev.removeImage("full", 1);
    const after = fleetMetricLines(t.config.state_path, t.pub);
    check(after);
    expect(after.filter((l) => l.includes('version="1"'))).toEqual([]);
    expect(after).toContain('si_fleet_downloads_started_total{channel="devel",device="mako",version="other",kind="full",base=""} 1');
    // Tomorrow nobody has polled yet.
    expect(fleetMetricLines(t.config.state_path, t.pub, new Date(Date.now() + 86_400_000))).toContain(
      'si_fleet_polling_clients{channel="devel",device="mako"} 0',
    );
  });
});

describe("live counts of si serve with two worker processes and no access log", () => {
  let t: FleetTree;
  beforeAll(async () => {
    t = await fleetTree();
  }, 120_000);
  afterAll(() => {
    if (t) rmSync(t.inst.base, { recursive: true, force: true });
  });

  it("adds both workers' counts to the database by the time si serve has stopped", async () => {
    const serve = spawnServe(
      t.inst.config,
      "--workers",
      "2",
      "--no-schedule",
      "--admin-port",
      "off",
      "--https-port",
      "off",
      "--http-port",
      "0",
      "--address",
      "127.0.0.1",
      "--no-access-log",
    );
    try {
      const listening = await serve.waitFor((l) => l.event === "listening" && l.listener === "http", "the http listener");
      const port = Number(new URL(String(listening.url)).port);
      await traffic({ port }, t);
    } finally {
      serve.child.kill("SIGTERM");
    }
    expect(await serve.exit).toBe(0);
    expect(serve.lines.filter((l) => l.event === "access")).toEqual([]);
    expect(liveReport(t.config.state_path, t.pub)).toEqual(EXPECTED);
  }, 120_000);
});
