/**
 * Issue 15 item 6: `si check-latest` asked another organisation's server unless told
 * otherwise, and could not check an HTTPS server with a private certificate. Now `--server`
 * defaults to this instance (public_fqdn with its HTTPS port when on, else HTTP) and
 * `--ca FILE` trusts a CA. Real HTTPS on 127.0.0.1 with a self-signed certificate (openssl).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { instanceServerUrl } from "../../src/cli/commands/check-latest.js";
import { ensureSelfSignedCertificate } from "../../src/server/tls.js";
import { runSiAsync } from "../helpers/instance.js";

const dir = mkdtempSync(join(tmpdir(), "si-check-latest-"));
const INDEX = {
  global: { generated_at: "Mon Mar  2 10:00:00 UTC 2026" },
  images: [
    { type: "full", version: 1, description: "version=1,ubuntu=20260301", files: [] },
    { type: "full", version: 2, description: "version=2,ubuntu=20260302", files: [] },
    { type: "delta", version: 2, base: 1, description: "version=2,ubuntu=20260302", files: [] },
  ],
};
const EXPECTED = "Current full image: 2 (ubuntu=20260302)\nAvailable deltas:\n - From '1 (ubuntu=20260301)' to '2 (ubuntu=20260302)'\n";

/** Answers /devel/mako/index.json, and records the paths it was asked for. */
function indexHandler(asked: string[]): RequestListener {
  return (req, res) => {
    asked.push(req.url ?? "");
    if (req.url !== "/devel/mako/index.json") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(INDEX));
  };
}

const listen = (s: Server) => new Promise<number>((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)));

function config(name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, ["[global]", `base_path = ${dir}`, ...lines, ""].join("\n"));
  return file;
}

describe("si check-latest against this instance", () => {
  const cert = join(dir, "tls/cert.pem");
  const asked: string[] = [];
  let https: Server;
  let http: Server;
  let httpsPort = 0;
  let httpPort = 0;

  beforeAll(async () => {
    await ensureSelfSignedCertificate(cert, join(dir, "tls/key.pem"), ["127.0.0.1"]);
    https = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(join(dir, "tls/key.pem")) }, indexHandler(asked));
    http = createHttpServer(indexHandler(asked));
    [httpsPort, httpPort] = await Promise.all([listen(https), listen(http)]);
  });
  afterAll(() => {
    https?.close();
    http?.close();
  });

  it("defaults --server to public_fqdn and public_https_port, and --ca trusts its self-signed certificate", async () => {
    const conf = config("https.conf", ["public_fqdn = 127.0.0.1", `public_http_port = ${httpPort}`, `public_https_port = ${httpsPort}`]);
    asked.length = 0;
    const r = await runSiAsync(["--config", conf, "check-latest", "mako", "--channel", "devel", "--ca", cert]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(EXPECTED);
    expect(asked).toEqual(["/devel/mako/index.json"]);
  });

  it("without --ca, refuses the self-signed certificate in one line that names --ca", async () => {
    const r = await runSiAsync(["check-latest", "mako", "--channel", "devel", "--server", `https://127.0.0.1:${httpsPort}`], {
      env: { SI_CONFIG: "/nonexistent" },
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /^si: error: Cannot fetch https:\/\/127\.0\.0\.1:\d+\/devel\/mako\/index\.json: .*certificate.*--ca FILE.*\n$/,
    );
  });

  it("with HTTPS off (public_https_port = 0), uses public_http_port", async () => {
    const conf = config("http.conf", ["public_fqdn = 127.0.0.1", `public_http_port = ${httpPort}`, "public_https_port = 0"]);
    const r = await runSiAsync(["--config", conf, "check-latest", "mako", "--channel", "devel"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(EXPECTED);
  });

  it("with no public_fqdn (or no config) and no --server, says so instead of asking someone else's server", async () => {
    const conf = config("nofqdn.conf", []);
    const r = await runSiAsync(["--config", conf, "check-latest", "mako"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`si: error: Cannot choose a server for check-latest: public_fqdn is not set in ${conf} (give --server URL)\n`);
    const none = await runSiAsync(["--config", join(dir, "missing.conf"), "check-latest", "mako"]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/^si: error: Cannot choose a server for check-latest: .*missing\.conf.* \(give --server URL\)\n$/);
  });

  it("--ca with a file that is not a certificate is an error naming the file", async () => {
    const bad = join(dir, "not-a-cert.pem");
    writeFileSync(bad, "hello\n");
    const r = await runSiAsync(["check-latest", "mako", "--server", `https://127.0.0.1:${httpsPort}`, "--ca", bad]);
    expect(r.stderr).toBe(`si: error: Cannot read CA file '${bad}': no PEM certificate in it\n`);
  });
});

describe("instanceServerUrl", () => {
  const base = { path: "/etc/si/config", public_fqdn: "si.example.org" };
  it("leaves out the scheme's default port and brackets IPv6 literals", () => {
    expect(instanceServerUrl({ ...base, public_http_port: "80", public_https_port: "443" })).toBe("https://si.example.org");
    expect(instanceServerUrl({ ...base, public_http_port: "80", public_https_port: "0" })).toBe("http://si.example.org");
    expect(instanceServerUrl({ ...base, public_http_port: "8080" })).toBe("http://si.example.org:8080");
    expect(instanceServerUrl({ ...base, public_fqdn: "::1", public_https_port: "8443" })).toBe("https://[::1]:8443");
  });
  it("needs at least one port", () => {
    expect(() => instanceServerUrl({ ...base, public_http_port: "0", public_https_port: "0" })).toThrow(
      /both 0 or unset in \/etc\/si\/config/,
    );
  });
});
