/**
 * Issue 14.3, `admin_token_file`: with a token configured, the dashboard, /metrics and
 * POST /verify need `Authorization: Bearer <token>` or the session cookie; a browser hands the
 * token over once (login form or `?token=`) and gets an HttpOnly, SameSite=Strict cookie
 * that is not the token itself. /healthz stays open for supervisors. The token never reaches
 * the log. Real HTTP on 127.0.0.1, settings read from etc/config.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { prepareOperations, type Operations } from "../../src/dashboard/operations.js";
import { startListeners, type ListenerGroup } from "../../src/server/listener.js";
import { ask, collectingLogger, keyringInstance } from "./keyring-instance.js";
import type { Instance } from "../helpers/instance.js";

const TOKEN = "3f9c1b7e5d2a4c6e8f0a1b2c3d4e5f60";

/** `name=value` of a Set-Cookie header, and its attributes. */
function cookieOf(setCookie: string | string[] | undefined): { pair: string; attrs: string[] } {
  const line = Array.isArray(setCookie) ? setCookie[0] : setCookie!;
  const [pair, ...attrs] = line.split(";").map((s) => s.trim());
  return { pair: pair, attrs };
}

describe("admin_token_file", () => {
  let inst: Instance;
  let ops: Operations;
  let admin: ListenerGroup;
  let port: number;
  let host: string;
  const logger = collectingLogger();

  beforeAll(async () => {
    ({ inst } = await keyringInstance({ extraConfig: ["admin_token_file = secret/admin-token"] }));
    mkdirSync(join(inst.base, "secret"), { recursive: true });
    writeFileSync(join(inst.base, "secret/admin-token"), TOKEN + "\n", { mode: 0o600 });
    const config = await loadConfig(inst.config);
    expect(config.admin_token_file).toBe(join(inst.base, "secret/admin-token"));
    ops = prepareOperations(config, { logger, schedule: false, adminPort: 0 });
    admin = await startListeners([ops.listener!], 1000);
    await ops.start(admin.urls.admin);
    port = admin.ports.admin!;
    host = `127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await ops?.stop(1000);
    await admin?.close();
    ops?.close();
  });

  it("refuses GET /, GET /metrics and POST /verify without the token, with 401 and a Bearer challenge", async () => {
    const page = await ask(port, "GET", "/", { Host: host });
    expect(page.status).toBe(401);
    expect(page.headers["www-authenticate"]).toBe('Bearer realm="si-admin"');
    // A browser gets the login form, not the dashboard.
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.body).toMatch(/<form method="post" action="login">[\s\S]*<input type="password" name="token"/);
    expect(page.body).not.toContain("Keyrings");
    const metrics = await ask(port, "GET", "/metrics", { Host: host });
    expect(metrics.status).toBe(401);
    expect(metrics.body).toContain("Authorization: Bearer <token>");
    expect(metrics.body).not.toContain("si_keyring");
    const verify = await ask(port, "POST", "/verify", { Host: host, Origin: `http://${host}` });
    expect(verify.status).toBe(401);
    for (const bad of [
      "Bearer wrong-token-0123456789abcdef",
      `Bearer ${TOKEN}x`,
      `Basic ${Buffer.from(`admin:${TOKEN}`).toString("base64")}`,
      "Bearer",
    ]) {
      const r = await ask(port, "GET", "/metrics", { Host: host, Authorization: bad });
      expect(r.status, bad).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Bearer realm="si-admin", error="invalid_token"');
    }
    expect(logger.entries.some((e) => String(e.msg).startsWith("tree verification"))).toBe(false);
  });

  it("answers with Authorization: Bearer <token> (how Prometheus scrapes)", async () => {
    const metrics = await ask(port, "GET", "/metrics", { Host: host, Authorization: `Bearer ${TOKEN}` });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(
      /^si_keyring_expiry_timestamp_seconds\{keyring="gpg\/image-signing\.tar\.xz",type="image-signing"\} \d+$/m,
    );
    expect((await ask(port, "GET", "/", { Host: host, Authorization: `bearer ${TOKEN}` })).status).toBe(200);
    const verify = await ask(port, "POST", "/verify", { Host: host, Authorization: `Bearer ${TOKEN}` });
    expect(verify.status).toBe(303);
  });

  it("keeps /healthz open, still behind the Host check", async () => {
    expect((await ask(port, "GET", "/healthz", { Host: host })).status).toBe(200);
    expect((await ask(port, "GET", "/healthz", { Host: "evil.example:8090" })).status).toBe(421);
    // The Host check comes first: a rebinding page does not even see the login form.
    expect((await ask(port, "GET", "/", { Host: "evil.example:8090", Authorization: `Bearer ${TOKEN}` })).status).toBe(421);
  });

  it("?token= sets an HttpOnly, SameSite=Strict session cookie that opens the dashboard", async () => {
    const wrong = await ask(port, "GET", "/?token=nope", { Host: host });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toContain("Wrong token.");
    expect(wrong.headers["set-cookie"]).toBeUndefined();

    const r = await ask(port, "GET", `/?token=${TOKEN}`, { Host: host });
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe("./");
    const { pair, attrs } = cookieOf(r.headers["set-cookie"]);
    expect(attrs).toEqual(expect.arrayContaining(["HttpOnly", "SameSite=Strict", "Path=/"]));
    expect(attrs).not.toContain("Secure");
    // The cookie is not the token: reading it (it is HttpOnly anyway) does not give the token away.
    expect(pair).toMatch(/^si_admin=[A-Za-z0-9_-]{20,}$/);
    expect(pair).not.toContain(TOKEN);

    const page = await ask(port, "GET", "/", { Host: host, Cookie: `theme=dark; ${pair}` });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<section id="keyrings">');
    expect(page.body).toContain('action="logout"');
    expect((await ask(port, "GET", "/metrics", { Host: host, Cookie: pair })).status).toBe(200);
    // The dashboard's own "Verify now" form, posted with the cookie.
    expect((await ask(port, "POST", "/verify", { Host: host, Origin: `http://${host}`, Cookie: pair })).status).toBe(303);
    // A forged or stale cookie opens nothing.
    expect((await ask(port, "GET", "/", { Host: host, Cookie: "si_admin=" + "A".repeat(43) })).status).toBe(401);
    expect((await ask(port, "GET", "/", { Host: host, Cookie: `si_admin=${TOKEN}` })).status).toBe(401);
    // Behind an HTTPS proxy the cookie is also Secure; ?token= on another page returns to it.
    const proxied = await ask(port, "GET", `/metrics?token=${TOKEN}`, { Host: host, "X-Forwarded-Proto": "https" });
    expect(proxied.headers.location).toBe("metrics");
    expect(cookieOf(proxied.headers["set-cookie"]).attrs).toContain("Secure");
  });

  it("the login form: right token logs in, wrong token and foreign origins do not; logout clears the cookie", async () => {
    const form = { Host: host, Origin: `http://${host}`, "Content-Type": "application/x-www-form-urlencoded" };
    const bad = await ask(port, "POST", "/login", form, "token=guess");
    expect(bad.status).toBe(401);
    expect(bad.body).toContain("Wrong token.");
    expect(bad.headers["set-cookie"]).toBeUndefined();
    const foreign = await ask(port, "POST", "/login", { ...form, Origin: "http://evil.example" }, `token=${TOKEN}`);
    expect(foreign.status).toBe(403);
    const ok = await ask(port, "POST", "/login", form, `token=${encodeURIComponent(TOKEN)}`);
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe("./");
    const { pair, attrs } = cookieOf(ok.headers["set-cookie"]);
    expect(attrs).toEqual(expect.arrayContaining(["HttpOnly", "SameSite=Strict"]));
    expect((await ask(port, "GET", "/", { Host: host, Cookie: pair })).status).toBe(200);
    expect((await ask(port, "GET", "/login", { Host: host })).status).toBe(200);

    const out = await ask(port, "POST", "/logout", { Host: host, Origin: `http://${host}`, Cookie: pair });
    expect(out.status).toBe(303);
    expect(cookieOf(out.headers["set-cookie"])).toMatchObject({
      pair: "si_admin=",
      attrs: expect.arrayContaining(["Max-Age=0"]) as string[],
    });
  });

  it("never writes the token to the log", () => {
    const log = JSON.stringify(logger.entries);
    expect(log).toContain("token=REDACTED");
    expect(log).not.toContain(TOKEN);
    expect(logger.entries).toContainEqual(expect.objectContaining({ event: "admin-auth" }));
    expect(logger.entries.some((e) => e.event === "admin-token-exposed")).toBe(false);
  });

  it("refuses to start with a missing, short or world-readable-and-warned token file", async () => {
    const config = await loadConfig(inst.config);
    const file = join(inst.base, "secret/admin-token");
    expect(() =>
      prepareOperations(
        { ...config, admin_token_file: join(inst.base, "nope") },
        { logger: collectingLogger(), schedule: false, adminPort: 0 },
      ),
    ).toThrow(`Cannot read admin_token_file ${join(inst.base, "nope")}: ENOENT`);
    writeFileSync(file, "short\n");
    expect(() => prepareOperations(config, { logger: collectingLogger(), schedule: false, adminPort: 0 })).toThrow(
      `Cannot use admin_token_file ${file}: the token has 5 characters, at least 16 are needed (e.g. openssl rand -hex 32)`,
    );
    writeFileSync(file, TOKEN + "\n");
    chmodSync(file, 0o644);
    const warned = collectingLogger();
    const o = prepareOperations(config, { logger: warned, schedule: false, adminPort: 0 });
    const g = await startListeners([o.listener!], 1000);
    try {
      await o.start(g.urls.admin);
      expect(warned.entries).toContainEqual(expect.objectContaining({ level: "warn", event: "admin-token-exposed" }));
    } finally {
      await o.stop(1000);
      await g.close();
      o.close();
    }
  });
});
