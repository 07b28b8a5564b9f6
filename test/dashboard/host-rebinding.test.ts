/**
 * Issue 14.3, DNS rebinding: a page on evil.example that rebinds its name to 127.0.0.1 makes
 * the operator's browser send `Host: evil.example:8090` (and `Origin: http://evil.example:8090`
 * on a POST). The admin listener must refuse that for every path, and still answer for
 * localhost, loopback literals, admin_address and the names in admin_allowed_hosts. Real HTTP
 * on 127.0.0.1, in process and through `si serve` with the settings in etc/config.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync, readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { prepareOperations, type Operations } from "../../src/dashboard/operations.js";
import { startListeners, type ListenerGroup } from "../../src/server/listener.js";
import { spawnServe } from "../helpers/serve-process.js";
import { ask, collectingLogger, keyringInstance } from "./keyring-instance.js";
import type { Config } from "../../src/config/types.js";

describe("admin listener Host check", () => {
  let config: Config;
  let ops: Operations;
  let admin: ListenerGroup;
  let port: number;
  const logger = collectingLogger();

  beforeAll(async () => {
    ({ config } = await keyringInstance({ extraConfig: ["admin_allowed_hosts = admin.example.net, Ops-Box"] }));
    ops = prepareOperations(config, { logger, schedule: false, adminPort: 0 });
    admin = await startListeners([ops.listener!], 1000);
    await ops.start(admin.urls.admin);
    port = admin.ports.admin!;
  });
  afterAll(async () => {
    await ops?.stop(1000);
    await admin?.close();
    ops?.close();
  });

  it("refuses Host: evil.example:8090 for GET /, GET /metrics, POST /verify and the rest, with 421 and a clear body", async () => {
    const evil = { Host: "evil.example:8090" };
    const answers = [
      await ask(port, "GET", "/", evil),
      await ask(port, "GET", "/metrics", evil),
      // A rebinding page's own form: its Origin matches the Host it sends.
      await ask(port, "POST", "/verify", { ...evil, Origin: "http://evil.example:8090" }),
      await ask(port, "GET", "/healthz", evil),
      await ask(port, "HEAD", "/", evil),
      await ask(port, "GET", "/nope", evil),
    ];
    for (const r of answers) {
      expect(r.status).toBe(421);
      expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
    }
    expect(answers[0].body).toBe(
      'Misdirected Request: this admin listener does not answer for host "evil.example:8090". ' +
        "Use localhost, a loopback address or admin_address, or add the name to admin_allowed_hosts (protection against DNS rebinding).\n",
    );
    expect(answers[0].body).not.toContain("<html");
    expect(answers[1].body).not.toContain("si_");
    // The refused POST started nothing.
    expect(logger.entries.some((e) => String(e.msg).startsWith("tree verification"))).toBe(false);
    // One warning per distinct refused host, not one per request.
    const warned = logger.entries.filter((e) => e.event === "admin-host-refused");
    expect(warned).toEqual([expect.objectContaining({ level: "warn", host: '"evil.example:8090"' })]);
  });

  it("refuses look-alike and malformed hosts", async () => {
    for (const host of [
      "evil.example",
      "localhost.evil.example",
      "127.0.0.1.nip.io",
      "admin.example.net.evil.example",
      "evil.example:8090@127.0.0.1",
      "localhost:99999",
      "[::1",
      "::1",
      "0.0.0.0",
    ]) {
      const r = await ask(port, "GET", "/metrics", { Host: host });
      expect(r.status, host).toBe(421);
    }
  });

  it("answers for localhost, loopback literals with or without port, admin_address and admin_allowed_hosts", async () => {
    for (const host of [
      `localhost:${port}`,
      "localhost",
      "LocalHost.",
      `127.0.0.1:${port}`,
      "127.0.0.1",
      "127.0.1.1",
      `[::1]:${port}`,
      "[::1]",
      "admin.example.net",
      "admin.example.net:443",
      "ops-box",
    ]) {
      const r = await ask(port, "GET", "/metrics", { Host: host });
      expect(r.status, host).toBe(200);
      expect(r.body).toContain("si_keyring_expiry_timestamp_seconds");
    }
    expect((await ask(port, "GET", "/", { Host: "ops-box:8090" })).status).toBe(200);
    expect((await ask(port, "GET", "/healthz", { Host: "localhost" })).status).toBe(200);
    // POST /verify from our own page still works.
    const own = await ask(port, "POST", "/verify", { Host: `127.0.0.1:${port}`, Origin: `http://127.0.0.1:${port}` });
    expect(own.status).toBe(303);
  });
});

describe("admin listener on every interface (admin_address = 0.0.0.0)", () => {
  it("answers for the machine's own addresses, refuses names, and warns that it has no token", async () => {
    const { config } = await keyringInstance();
    const logger = collectingLogger();
    const ops = prepareOperations({ ...config, admin_address: "0.0.0.0" }, { logger, schedule: false, adminPort: 0 });
    const g = await startListeners([ops.listener!], 1000);
    try {
      await ops.start(g.urls.admin);
      const port = g.ports.admin;
      const own = Object.values(networkInterfaces())
        .flatMap((l) => l ?? [])
        .find((a) => a.family === "IPv4" && !a.internal)?.address;
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, ...(own ? [`${own}:${port}`] : [])]) {
        expect((await ask(port, "GET", "/metrics", { Host: host })).status, host).toBe(200);
      }
      for (const host of ["evil.example:8090", "0.0.0.0", "198.51.100.7"])
        expect((await ask(port, "GET", "/metrics", { Host: host })).status, host).toBe(421);
      expect(logger.entries).toContainEqual(expect.objectContaining({ level: "warn", event: "admin-open" }));
    } finally {
      await ops.stop(1000);
      await g.close();
      ops.close();
    }
  });
});

describe("si serve with admin_allowed_hosts in etc/config", () => {
  it("refuses a foreign Host, answers an allowed one, and refuses to start on a malformed entry", async () => {
    const { inst } = await keyringInstance({ extraConfig: ["admin_allowed_hosts = dash.example.org"] });
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
      const line = await s.waitFor((l) => l.event === "admin-listening", "the admin listener");
      const port = Number(new URL(String(line.url)).port);
      expect((await ask(port, "GET", "/", { Host: "evil.example:8090" })).status).toBe(421);
      expect((await ask(port, "POST", "/verify", { Host: "evil.example:8090", Origin: "http://evil.example:8090" })).status).toBe(421);
      expect((await ask(port, "GET", "/metrics", { Host: "dash.example.org:8090" })).status).toBe(200);
      expect((await ask(port, "GET", "/", { Host: `localhost:${port}` })).status).toBe(200);
      await s.waitFor((l) => l.event === "admin-host-refused", "the refusal warning");
      s.child.kill("SIGTERM");
      expect(await s.exit).toBe(0);
    } finally {
      s.child.kill("SIGKILL");
    }

    writeFileSync(
      inst.config,
      readFileSync(inst.config, "utf8").replace("admin_allowed_hosts = dash.example.org", "admin_allowed_hosts = dash example!"),
    );
    const bad = await inst.siAsync(
      "serve",
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
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("admin_allowed_hosts entry 'example!'");
  });
});
