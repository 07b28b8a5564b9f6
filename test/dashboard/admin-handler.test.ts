/**
 * The admin side over real HTTP on 127.0.0.1, against an instance with imported images and a
 * failed import: the dashboard shows them, /metrics carries the history's figures, the
 * keyrings' expiry dates and the public listener's requests by status and path class,
 * /healthz answers, and "Verify now" runs and stores a tree verification.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "node:http";
import { prepareOperations, type Operations } from "../../src/dashboard/operations.js";
import type { StoredVerification } from "../../src/dashboard/verification.js";
import { startListeners, type ListenerGroup } from "../../src/server/listener.js";
import { startServer, type RunningServer } from "../../src/server/start.js";
import type { LogEntry, ServerLogger } from "../../src/server/log.js";
import { readKeyringTarball } from "../../src/pgp/keyring.js";
import { ImportHistory } from "../../src/state/history.js";
import { makeFleetInstance, type FleetFixture } from "./fixture.js";
import { parseMetrics } from "./metrics-parse.js";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function fetch(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function collectingLogger(): ServerLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return { entries, log: (e) => entries.push(e) };
}

describe("admin listener", () => {
  let fx: FleetFixture;
  let server: RunningServer;
  let admin: ListenerGroup;
  let ops: Operations;
  let port: number;
  const logger = collectingLogger();

  beforeAll(async () => {
    fx = await makeFleetInstance();
    server = await startServer(fx.config, { address: "127.0.0.1", httpPort: 0, httpsPort: null, logger: collectingLogger() });
    ops = prepareOperations(fx.config, { logger, schedule: false, adminPort: 0 });
    admin = await startListeners([ops.listener!], 1000);
    ops.setRequestCounts(() => server.requests.snapshot());
    await ops.start(admin.urls.admin);
    port = admin.ports.admin!;
  });
  afterAll(async () => {
    await ops?.stop(1000);
    await Promise.all([server?.close(), admin?.close()]);
    ops?.close();
    await fx?.close();
  });

  it("listens on the admin address only, and says where", () => {
    expect(ops.listener).toMatchObject({ name: "admin", address: "127.0.0.1" });
    expect(logger.entries).toContainEqual(expect.objectContaining({ event: "admin-listening", url: `http://127.0.0.1:${port}/` }));
    expect(ops.scheduler).toBeNull();
  });

  it("GET / renders the channels, devices, images, tags, phasing, keyrings and the failed import", async () => {
    const r = await fetch(port, "GET", "/");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
    const page = r.body;
    expect(page).toContain('<meta name="viewport"');
    expect(page).toMatch(/<h3>devel\s*<\/h3>/);
    expect(page).toMatch(/<h4>good /);
    expect(page).toMatch(/<h4>bad /);
    // good: 3 (tag OTA-7, 40 %), 2, 1; the newest row first.
    expect(page).toMatch(/<strong>3<\/strong>[\s\S]*OTA-7[\s\S]*40 %[\s\S]*<strong>2<\/strong>[\s\S]*<strong>1<\/strong>/);
    // The failed device import with its error, under the partial run.
    expect(page).toMatch(/badge warn">partial</);
    expect(page).toMatch(/devel\/bad<\/strong> failed: <span class="error">Cannot generate http for devel\/bad: [^<]*HTTP 404/);
    // Keyrings: the device keyring expires in 20 days (warning), image-signing in ~2 years.
    expect(page).toMatch(
      /devel\/good\/device-signing\.tar\.xz<\/code><br><span class="muted">devel\/good<\/span>[\s\S]*?badge warn">(19|20) days left/,
    );
    expect(page).toMatch(/gpg\/image-signing\.tar\.xz[\s\S]*?badge ok">(729|730) days left/);
    expect(page).toContain('<svg class="chart"');
    expect(page).not.toContain("<script");
  });

  it("/metrics: history figures, keyring expiry and the public listener's requests", async () => {
    const pub = server.httpPort!;
    for (const p of [
      "/channels.json",
      "/channels.json",
      "/channels.json",
      "/devel/good/index.json",
      "/devel/good/index.json.asc",
      "/gpg/image-signing.tar.xz",
      "/nope",
    ]) {
      await fetch(pub, "GET", p);
    }
    const r = await fetch(port, "GET", "/metrics");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    const samples = parseMetrics(r.body);
    const value = (name: string, labels: Record<string, string> = {}) => {
      const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      expect(hits, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
      return hits[0].value;
    };
    // Every family is declared once, before its samples.
    for (const s of samples) expect(r.body).toContain(`# TYPE ${s.name.replace(/_(sum|count)$/, "")} `);

    expect(value("si_import_runs_total", { trigger: "cli", outcome: "ok" })).toBe(1);
    expect(value("si_import_runs_total", { trigger: "cli", outcome: "partial" })).toBe(1);
    expect(value("si_import_run_duration_seconds_count")).toBe(2);
    expect(value("si_published_images_total", { channel: "devel", device: "good" })).toBe(2);
    expect(value("si_published_images_total", { channel: "devel", device: "bad" })).toBe(1);
    expect(value("si_device_imports_total", { channel: "devel", device: "bad", outcome: "failed" })).toBe(1);
    expect(value("si_last_import_run_success")).toBe(0);
    expect(value("si_last_published_version", { channel: "devel", device: "good" })).toBe(2);

    const history = ImportHistory.open(fx.config.state_path);
    const runs = history.listRuns(10);
    history.close();
    const good = runs.flatMap((run) => run.devices).filter((d) => d.device === "good" && d.outcome === "published");
    expect(value("si_published_bytes_total", { channel: "devel", device: "good" })).toBe(good.reduce((n, d) => n + d.bytes, 0));
    expect(value("si_published_bytes_total", { channel: "devel", device: "good" })).toBeGreaterThan(0);
    const lastGood = Math.max(...good.map((d) => Date.parse(d.finished_at) / 1000));
    expect(value("si_last_successful_import_timestamp_seconds", { channel: "devel", device: "good" })).toBeCloseTo(lastGood, 3);
    // bad's last success is run 1 (run 2 failed).
    const badOk = runs.at(-1)!.devices.find((d) => d.device === "bad")!;
    expect(value("si_last_successful_import_timestamp_seconds", { channel: "devel", device: "bad" })).toBeCloseTo(
      Date.parse(badOk.finished_at) / 1000,
      3,
    );

    for (const [path, type] of [
      ["gpg/image-signing.tar.xz", "image-signing"],
      ["devel/good/device-signing.tar.xz", "device-signing"],
    ] as const) {
      const { meta } = await readKeyringTarball(join(fx.inst.publish, path));
      expect(value("si_keyring_expiry_timestamp_seconds", { keyring: path, type })).toBe(meta.expiry);
    }
    expect(value("si_http_requests_total", { class: "channels", status: "200" })).toBe(3);
    expect(value("si_http_requests_total", { class: "index", status: "200" })).toBe(1);
    expect(value("si_http_requests_total", { class: "signature", status: "200" })).toBe(1);
    expect(value("si_http_requests_total", { class: "keyring", status: "200" })).toBe(1);
    expect(value("si_http_requests_total", { class: "other", status: "404" })).toBe(1);
    // Admin requests are not the public listeners' and are not counted.
    expect(samples.filter((s) => s.name === "si_http_requests_total").reduce((n, s) => n + s.value, 0)).toBe(7);
    expect(value("si_scheduler_enabled")).toBe(0);
  });

  it("/healthz answers 200 while the tree is readable, 503 (naming the problem) when it is not", async () => {
    const r = await fetch(port, "GET", "/healthz");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ status: "ok" });
    const broken = prepareOperations(
      { ...fx.config, publish_path: join(fx.inst.base, "missing") },
      { logger: collectingLogger(), schedule: false, adminPort: 0 },
    );
    const g = await startListeners([broken.listener!], 1000);
    try {
      const b = await fetch(g.ports.admin, "GET", "/healthz");
      expect(b.status).toBe(503);
      expect(JSON.parse(b.body)).toMatchObject({ status: "error", error: expect.stringContaining("missing") as string });
      // The dashboard still renders and says what is wrong.
      const page = await fetch(g.ports.admin, "GET", "/");
      expect(page.status).toBe(200);
      expect(page.body).toContain("Cannot read the published tree: Invalid path: ");
    } finally {
      await g.close();
      broken.close();
    }
  });

  it("POST /verify runs a tree verification, stores it, and the dashboard shows it", async () => {
    expect((await fetch(port, "GET", "/")).body).toContain("The tree has not been verified yet.");
    expect((await fetch(port, "GET", "/verify")).status).toBe(405);
    const foreign = await fetch(port, "POST", "/verify", { Origin: "http://evil.example" });
    expect(foreign.status).toBe(403);
    const r = await fetch(port, "POST", "/verify", { Origin: `http://127.0.0.1:${port}`, Host: `127.0.0.1:${port}` });
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe("./");
    let page = "";
    for (let i = 0; i < 600 && !/badge ok">OK</.test(page); i++) {
      page = (await fetch(port, "GET", "/")).body;
      if (!/badge ok">OK</.test(page)) await new Promise((res) => setTimeout(res, 100));
    }
    expect(page).toMatch(/<section id="verification">[\s\S]*badge ok">OK<[\s\S]*dashboard[\s\S]*0 error\(s\)/);
    const stored = JSON.parse(readFileSync(join(fx.config.state_path, "tree-verification.json"), "utf8")) as StoredVerification;
    expect(stored).toMatchObject({ trigger: "dashboard", report: { ok: true, errors: 0 } });
    expect(stored.report!.checked.signatures).toBeGreaterThan(0);
    const m = parseMetrics((await fetch(port, "GET", "/metrics")).body);
    expect(m.find((s) => s.name === "si_tree_verification_ok")?.value).toBe(1);
    expect(logger.entries.some((e) => e.msg === "tree verification: OK, 0 error(s), " + stored.report!.warnings + " warning(s)")).toBe(
      true,
    );
    // Behind a reverse proxy the page's origin is the proxy's, passed as X-Forwarded-Host.
    const proxied = await fetch(port, "POST", "/verify", { Origin: "https://ota.example.net", "X-Forwarded-Host": "ota.example.net" });
    expect(proxied.status).toBe(303);
  });

  it("answers 404 for other paths and 405 for other methods, and logs admin requests as JSON entries", async () => {
    expect((await fetch(port, "GET", "/channels.json")).status).toBe(404);
    expect((await fetch(port, "DELETE", "/")).status).toBe(405);
    const access = logger.entries.filter((e) => e.event === "access" && e.listener === "admin");
    expect(access.length).toBeGreaterThan(3);
    expect(access.at(-1)).toMatchObject({ method: "DELETE", path: "/", status: 405 });
    expect(existsSync(join(fx.config.state_path, "history.sqlite"))).toBe(true);
  });
});
