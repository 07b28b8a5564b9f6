/**
 * The shipped etc/nginx/system-image.conf, run by a real nginx over the same tree `si serve`
 * serves: what devices and flashing tools need must hold there too (client-protocol §2, §10).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { REPO } from "../helpers/instance.js";
import { fetchRaw, makeSite, rawExchange, type Site } from "./fixtures.js";

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe("etc/nginx/system-image.conf", () => {
  let site: Site;
  let nginx: ChildProcess;
  let http: number;
  let https: number;
  let ca: Buffer;

  beforeAll(async () => {
    site = await makeSite();
    mkdirSync(join(site.publish, "pool/.hidden"), { recursive: true });
    writeFileSync(join(site.publish, "pool/.x.tar.xz.tmp-1"), "partial");
    [http, https] = [await freePort(), await freePort()];
    ca = readFileSync(site.config.tls_cert!);
    const prefix = join(site.base, "nginx");
    mkdirSync(prefix);
    const conf = readFileSync(join(REPO, "etc/nginx/system-image.conf"), "utf8")
      .replaceAll("/srv/system-image/www", site.publish)
      .replaceAll("/srv/system-image/secret/tls/cert.pem", site.config.tls_cert!)
      .replaceAll("/srv/system-image/secret/tls/key.pem", site.config.tls_key!)
      .replace(/listen 80;/, `listen 127.0.0.1:${http};`)
      .replace(/listen 443 ssl;/, `listen 127.0.0.1:${https} ssl;`)
      .replace(/\n\s*listen \[::\]:\d+( ssl)?;/g, "");
    writeFileSync(join(prefix, "site.conf"), conf);
    writeFileSync(
      join(prefix, "nginx.conf"),
      // Workers must read the 0700 temp tree: as root (CI), keep them as root.
      `${process.getuid?.() === 0 ? "user root; " : ""}daemon off; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log; worker_processes 1;\n` +
        `events {}\nhttp { access_log off; client_body_temp_path ${prefix}; include ${prefix}/site.conf; }\n`,
    );
    execFileSync("nginx", ["-t", "-q", "-p", prefix, "-c", join(prefix, "nginx.conf")]);
    nginx = spawn("nginx", ["-p", prefix, "-c", join(prefix, "nginx.conf")], { stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      try {
        await fetchRaw({ port: http }, "HEAD", "/channels.json");
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });
  afterAll(() => {
    nginx?.kill("SIGQUIT");
  });

  it("answers HEAD and GET with the exact bytes on HTTP and HTTPS, never compressed", async () => {
    for (const target of [{ port: http }, { port: https, ca }]) {
      for (const [path, body] of Object.entries(site.files)) {
        const head = await fetchRaw(target, "HEAD", path, { "accept-encoding": "gzip" });
        expect(head.status, path).toBe(200);
        expect(Number(head.headers["content-length"])).toBe(body.length);
        const get = await fetchRaw(target, "GET", path, { "accept-encoding": "gzip, deflate, br" });
        expect(get.headers["content-encoding"]).toBeUndefined();
        expect(get.body.equals(body), path).toBe(true);
      }
    }
  });

  it("serves //pool/x as /pool/x, and Range requests", async () => {
    const pool = Object.keys(site.files).find((p) => p.startsWith("/pool/") && p.endsWith(".tar.xz"))!;
    const doubled = await fetchRaw({ port: http }, "GET", "/" + pool);
    expect(doubled.status).toBe(200);
    expect(doubled.body.equals(site.files[pool])).toBe(true);
    const part = await fetchRaw({ port: http }, "GET", pool, { range: "bytes=10-19" });
    expect(part.status).toBe(206);
    expect(part.body.equals(site.files[pool].subarray(10, 20))).toBe(true);
  });

  it("revalidates documents, caches the pool, hides temporaries and directories", async () => {
    expect((await fetchRaw({ port: http }, "HEAD", "/channels.json")).headers["cache-control"]).toBe("no-cache");
    const pool = Object.keys(site.files).find((p) => p.startsWith("/pool/") && p.endsWith(".tar.xz"))!;
    expect((await fetchRaw({ port: http }, "HEAD", pool)).headers["cache-control"]).toMatch(/max-age=\d+/);
    expect((await fetchRaw({ port: http }, "GET", "/pool/.x.tar.xz.tmp-1")).status).toBe(404);
    expect((await fetchRaw({ port: http }, "GET", "/pool/")).status).toBe(404);
    expect((await rawExchange(http, "GET /pool/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")).status).not.toBe(200);
    expect((await fetchRaw({ port: http }, "POST", "/channels.json")).status).toBeGreaterThanOrEqual(400);
  });
});
