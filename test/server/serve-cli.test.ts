/**
 * `si serve` as an operator runs it: a spawned `node bin/si.js serve` on a temp instance,
 * its JSON log on stdout, graceful SIGTERM (in-flight downloads finish, exit 0), and the
 * TLS helpers behind its HTTPS listener.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.js";
import { startServer } from "../../src/server/start.js";
import { ensureSelfSignedCertificate } from "../../src/server/tls.js";
import { REPO, runSi } from "../helpers/instance.js";
import { spawnServe as spawnServeAt } from "../helpers/serve-process.js";
import { collectingLogger, fetchRaw, makeSite, type Site } from "./fixtures.js";

let site: Site;
const BIG = 48 * 1024 * 1024;

beforeAll(async () => {
  site = await makeSite();
  writeFileSync(join(site.publish, "pool/big.tar.xz"), randomBytes(BIG));
});
afterAll(() => rmSync(site.base, { recursive: true, force: true }));

const spawnServe = (...args: string[]) => spawnServeAt(join(site.base, "etc/config"), ...args);

const portOf = (url: unknown) => Number(new URL(String(url)).port);

describe("si serve", () => {
  it.each(["1", "2"])(
    "with --workers %s: prints its URLs, serves HTTP and HTTPS, exits 0 on SIGTERM after finishing a download",
    async (workers) => {
      const s = spawnServe("--address", "127.0.0.1", "--http-port", "0", "--https-port", "0", "--workers", workers);
      try {
        const httpLine = await s.waitFor((l) => l.event === "listening" && l.listener === "http");
        const httpsLine = await s.waitFor((l) => l.event === "listening" && l.listener === "https");
        expect(String(httpLine.url)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
        expect(String(httpsLine.url)).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
        const ca = readFileSync(site.config.tls_cert!);
        expect((await fetchRaw({ port: portOf(httpsLine.url), ca }, "HEAD", "/channels.json")).status).toBe(200);

        // Start a large download, stop reading it, and ask the server to stop meanwhile.
        const port = portOf(httpLine.url);
        let received = 0;
        const done = new Promise<{ status: number; received: number }>((resolve, reject) => {
          const req = request({ host: "127.0.0.1", port, path: "/pool/big.tar.xz", agent: false }, (res) => {
            res.pause();
            s.child.kill("SIGTERM");
            void s
              .waitFor((l) => l.event === "stopping")
              .then(() => {
                res.on("data", (c: Buffer) => (received += c.length));
                // 'close' also comes when the server cuts the transfer: resolve with what arrived.
                res.on("close", () => resolve({ status: res.statusCode!, received }));
                res.on("error", () => undefined);
                res.resume();
              });
          });
          req.on("error", reject);
          req.end();
        });
        const r = await done;
        expect(r).toEqual({ status: 200, received: BIG });
        expect(await s.exit).toBe(0);
        expect(s.lines.at(-1)).toMatchObject({ event: "stopped" });
        expect(s.lines.find((l) => l.event === "access" && l.path === "/pool/big.tar.xz")).toMatchObject({ status: 200, bytes: BIG });
        expect(s.stderr()).toBe("");
      } finally {
        s.child.kill("SIGKILL");
      }
    },
  );

  it("exits 0 on SIGINT with no traffic, and refuses connections once stopping", async () => {
    const s = spawnServe("--address", "127.0.0.1", "--http-port", "0", "--https-port", "off", "--no-access-log", "--workers", "1");
    try {
      const line = await s.waitFor((l) => l.event === "listening");
      expect(s.lines.filter((l) => l.event === "listening")).toHaveLength(1);
      expect((await fetchRaw({ port: portOf(line.url) }, "GET", "/channels.json")).status).toBe(200);
      s.child.kill("SIGINT");
      expect(await s.exit).toBe(0);
      await expect(fetchRaw({ port: portOf(line.url) }, "GET", "/channels.json")).rejects.toThrow(/ECONNREFUSED/);
      expect(s.lines.some((l) => l.event === "access")).toBe(false);
    } finally {
      s.child.kill("SIGKILL");
    }
  });

  it("with --workers 2: serves from two processes, replaces a dead worker, stops them all on SIGTERM", async () => {
    const s = spawnServe("--address", "127.0.0.1", "--http-port", "0", "--https-port", "0", "--workers", "2");
    try {
      const line = await s.waitFor((l) => l.event === "listening" && l.listener === "https");
      await s.waitFor((l) => l.event === "listening" && l.listener === "http");
      const ca = readFileSync(site.config.tls_cert!);
      // Serve workers only: the primary may have another child for a moment (an import, gpg).
      const workers = () =>
        readFileSync(`/proc/${s.child.pid}/task/${s.child.pid}/children`, "utf8")
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map(Number)
          .filter((pid) => {
            try {
              return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("worker-main.js");
            } catch {
              return false; // gone already
            }
          });
      expect(workers()).toHaveLength(2);
      const victim = workers()[0];
      process.kill(victim, "SIGKILL");
      await s.waitFor((l) => l.event === "worker-exit" && l.worker === victim);
      await s.waitFor((l) => l.event === "worker-ready");
      // The replacement announces nothing; requests keep working throughout.
      for (let i = 0; i < 10; i++) expect((await fetchRaw({ port: portOf(line.url), ca }, "GET", "/channels.json")).status).toBe(200);
      const pids = new Set(workers());
      expect(pids.size).toBe(2);
      expect(pids.has(victim)).toBe(false);
      s.child.kill("SIGTERM");
      expect(await s.exit).toBe(0);
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
      expect(s.lines.filter((l) => l.event === "access" && l.path === "/channels.json").length).toBeGreaterThanOrEqual(10);
    } finally {
      s.child.kill("SIGKILL");
    }
  });

  it("re-reads the certificate on SIGHUP in every worker", async () => {
    const other = await makeSite();
    const cfg = join(other.base, "etc/config");
    const child = spawn(
      process.execPath,
      [join(REPO, "bin/si.js"), "--config", cfg, "serve", "--address", "127.0.0.1", "--https-port", "0", "--workers", "2"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const lines: Record<string, unknown>[] = [];
    const seen = (pred: (l: Record<string, unknown>) => boolean, n = 1) =>
      new Promise<void>((resolve) => {
        const check = () => (lines.filter(pred).length >= n ? resolve() : undefined);
        child.stdout.on("data", check);
        check();
      });
    let buf = "";
    child.stdout.setEncoding("utf8").prependListener("data", (c: string) => {
      buf += c;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const p of parts) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    try {
      await seen((l) => l.event === "listening");
      const port = portOf(lines.find((l) => l.event === "listening")!.url);
      rmSync(other.config.tls_cert!);
      rmSync(other.config.tls_key!);
      await ensureSelfSignedCertificate(other.config.tls_cert!, other.config.tls_key!, ["localhost"]);
      const ca = readFileSync(other.config.tls_cert!);
      child.kill("SIGHUP");
      await seen((l) => l.event === "tls-reloaded", 2);
      // Connections go round-robin to both workers: each must present the new certificate.
      for (let i = 0; i < 4; i++) expect((await fetchRaw({ port, ca }, "GET", "/channels.json")).status).toBe(200);
      child.kill("SIGTERM");
      expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(0);
    } finally {
      child.kill("SIGKILL");
      rmSync(other.base, { recursive: true, force: true });
    }
  });

  // A certbot hook that reloads and a systemd stop that follows at once: a worker still
  // reloading when the stop disconnects it must not die answering a primary that is gone.
  it("exits 0 on a SIGTERM that follows a SIGHUP at once, in every worker", async () => {
    for (let round = 0; round < 4; round++) {
      const s = spawnServe("--address", "127.0.0.1", "--http-port", "off", "--https-port", "0", "--workers", "2");
      try {
        await s.waitFor((l) => l.event === "listening", "listening");
        s.child.kill("SIGHUP");
        if (round % 2) await s.waitFor((l) => l.event === "tls-reloaded", "a first reload");
        s.child.kill("SIGTERM");
        expect([await s.exit, s.stderr(), s.lines.filter((l) => l.level === "error" && l.event !== "keyring-unreadable")]).toEqual([
          0,
          "",
          [],
        ]);
      } finally {
        s.child.kill("SIGKILL");
      }
    }
  });

  it("with workers, a port in use stops start-up with status 1 and says why", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const s = spawnServe("--address", "127.0.0.1", "--workers", "2", "--http-port", String(port));
      expect(await s.exit).toBe(1);
      // Reported once by the supervisor, not once per worker.
      expect(s.stderr()).toBe(`si: error: Cannot listen on 127.0.0.1:${port} (http): EADDRINUSE\n`);
    } finally {
      busy.close();
    }
  });

  it("refuses to start with both ports off, and rejects a bad port", () => {
    const off = runSi(["--config", join(site.base, "etc/config"), "serve"]);
    expect(off.status).toBe(1);
    expect(off.stderr).toMatch(/Cannot serve: public_http_port and public_https_port are both 0 or unset/);
    const bad = runSi(["--config", join(site.base, "etc/config"), "serve", "--http-port", "http"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--http-port");
  });

  it("names the missing certificate when HTTPS cannot start", () => {
    const cfg = join(site.base, "etc/config-nocert");
    writeFileSync(cfg, `[global]\nbase_path = ${site.base}\npublic_https_port = 8443\ntls_cert = secret/none.pem\n`);
    const r = runSi(["--config", cfg, "serve", "--https-port", "0"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`Cannot read TLS certificate ${join(site.base, "secret/none.pem")}`);
  });
});

describe("TLS", () => {
  it("creates a self-signed pair once: key 0600, names in subjectAltName", async () => {
    const dir = mkdtempSync(join(tmpdir(), "si-tls-"));
    const cert = join(dir, "tls/cert.pem");
    const key = join(dir, "tls/key.pem");
    expect(await ensureSelfSignedCertificate(cert, key, ["ota.example.net", "192.0.2.7"])).toBe(true);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const x = new X509Certificate(readFileSync(cert));
    expect(x.subject).toContain("CN=ota.example.net");
    expect(x.subjectAltName).toContain("DNS:ota.example.net");
    expect(x.subjectAltName).toContain("IP Address:192.0.2.7");
    expect(x.checkPrivateKey((await import("node:crypto")).createPrivateKey(readFileSync(key)))).toBe(true);
    const before = readFileSync(cert);
    expect(await ensureSelfSignedCertificate(cert, key, ["other"])).toBe(false);
    expect(readFileSync(cert).equals(before)).toBe(true);
    rmSync(key);
    await expect(ensureSelfSignedCertificate(cert, key, ["x"])).rejects.toThrow(ConfigError);
    rmSync(dir, { recursive: true });
  });

  it("is verified for real: refused without the CA, and reloaded for new connections", async () => {
    const s2 = await makeSite();
    const server = await startServer(s2.config, { address: "127.0.0.1", httpPort: null, httpsPort: 0, logger: collectingLogger() });
    try {
      const port = server.httpsPort!;
      await expect(fetchRaw({ port, ca: Buffer.from("") }, "GET", "/channels.json")).rejects.toThrow(
        /self[- ]signed|unable to verify|certificate/i,
      );
      const fingerprint = () =>
        new Promise<string>((resolve, reject) => {
          const sock = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false }, () => {
            resolve(sock.getPeerCertificate().fingerprint256);
            sock.end();
          });
          sock.on("error", reject);
        });
      const old = await fingerprint();
      rmSync(s2.config.tls_cert!);
      rmSync(s2.config.tls_key!);
      await ensureSelfSignedCertificate(s2.config.tls_cert!, s2.config.tls_key!, ["localhost"]);
      await server.reloadTls();
      const now = await fingerprint();
      expect(now).not.toBe(old);
      expect(now).toBe(new X509Certificate(readFileSync(s2.config.tls_cert!)).fingerprint256);
      const ok = await fetchRaw({ port, ca: readFileSync(s2.config.tls_cert!) }, "GET", "/channels.json");
      expect(ok.status).toBe(200);
    } finally {
      await server.close();
      rmSync(s2.base, { recursive: true, force: true });
    }
  });
});
