/**
 * `npm run bench:serve [-- --duration S] [--connections N] [--workers N]` (issue 8): one
 * published tree — channels.json, an index.json and a 100 MB pool file — served by `si serve`
 * and by nginx (sendfile on, access log off, 127.0.0.1 only, config in a temp dir), each
 * driven by wrk (64 connections, 10 s per URL after a 2 s warm-up). Prints requests/s and
 * throughput and the ratio ours/nginx. wrk and nginx are installed with apt-get if missing.
 * Targets: ≥ 50 % of nginx's requests/s on the JSON files, ≥ 80 % of its throughput on the
 * large file.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { Socket, createServer, type AddressInfo } from "node:net";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { SI } from "./instance.js";
import { table } from "./proctree.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const duration = Number(opt("--duration", "10"));
const connections = Number(opt("--connections", "64"));
const workers = opt("--workers", "auto");
const log = (s: string) => process.stderr.write(`bench:serve: ${s}\n`);

function ensureTool(bin: string, pkg: string): string {
  for (const dir of ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]) if (existsSync(join(dir, bin))) return join(dir, bin);
  log(`installing ${pkg} with apt-get`);
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", pkg], { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  return ensureTool(bin, pkg);
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((ok) => srv.listen(0, "127.0.0.1", ok));
  const { port } = srv.address() as AddressInfo;
  await new Promise((ok) => srv.close(ok));
  return port;
}

/** Resolves once a TCP connection to the port succeeds. */
async function waitListening(port: number, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((res) => {
      const s = new Socket();
      s.once("connect", () => (s.destroy(), res(true)));
      s.once("error", () => res(false));
      s.connect(port, "127.0.0.1");
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port}`);
}

/** The tree: channels.json, one device's index.json (~40 images), a 100 MB pool file. */
function makeTree(www: string): { paths: Record<string, string> } {
  mkdirSync(join(www, "devel/mako"), { recursive: true });
  mkdirSync(join(www, "pool"), { recursive: true });
  const channels: Record<string, unknown> = {};
  for (const c of ["devel", "rc", "stable"]) {
    channels[c] = { devices: Object.fromEntries(["mako", "hammerhead", "flo", "krillin", "arale"].map((d) => [d, { index: `/${c}/${d}/index.json`, keyring: { path: `/${c}/${d}/device-signing.tar.xz`, signature: `/${c}/${d}/device-signing.tar.xz.asc` } }])) };
  }
  writeFileSync(join(www, "channels.json"), JSON.stringify(channels, null, 4));
  const images = [];
  for (let v = 1; v <= 20; v++) {
    const file = (name: string, order: number) => ({ checksum: randomBytes(32).toString("hex"), order, path: `/pool/${name}-${randomBytes(32).toString("hex")}.tar.xz`, signature: "x.asc", size: 123456789 });
    const detail = `tag=2026-01-${String(v).padStart(2, "0")},ubports=2026010${v},device=7,keyring=archive-master,version=${v}`;
    images.push({ description: detail, files: [file("ubports", 0), file("device", 1), file("keyring", 2), file("version", 3)], type: "full", version: v, version_detail: detail });
    if (v > 1) images.push({ base: v - 1, description: detail, files: [file("ubports-delta", 0), file("keyring", 1), file("version", 2)], type: "delta", version: v, version_detail: detail });
  }
  writeFileSync(join(www, "devel/mako/index.json"), JSON.stringify({ global: { generated_at: "Thu Jan  1 00:00:00 UTC 2026" }, images }, null, 4));
  const big = "pool/ubports-0123456789abcdef.tar.xz";
  const fd = openSync(join(www, big), "w");
  for (let i = 0; i < 100; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  return { paths: { "channels.json": "/channels.json", "index.json": "/devel/mako/index.json", "100 MB file": `/${big}` } };
}

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

function wrk(wrkBin: string, url: string, seconds: number): { rps: number; mbps: number; errors: string } {
  const out = execFileSync(wrkBin, ["-t2", `-c${connections}`, `-d${seconds}s`, "--timeout", "30s", url], { encoding: "utf8" });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const t = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out);
  const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses: \d+/.exec(out)?.[0]].filter(Boolean).join("; ");
  return { rps, mbps: t ? (Number(t[1]) * UNITS[t[2]!]!) / 1e6 : NaN, errors };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((ok) => child.once("exit", ok));
  child.kill(signal);
  await done;
}

const wrkBin = ensureTool("wrk", "wrk");
const nginxBin = ensureTool("nginx", "nginx");
const work = resolve("bench-work");
mkdirSync(work, { recursive: true });
const dir = mkdtempSync(join(work, "serve-"));
chmodSync(dir, 0o755); // nginx's workers run as nobody
const www = join(dir, "www");
const { paths } = makeTree(www);
const load0 = loadavg()[0]!;
const results: Record<string, Record<string, { rps: number; mbps: number; errors: string }>> = {};

async function drive(name: string, port: number): Promise<void> {
  results[name] = {};
  for (const [what, path] of Object.entries(paths)) {
    const url = `http://127.0.0.1:${port}${path}`;
    execFileSync("curl", ["-fsS", "-o", "/dev/null", url]); // answers 200 at all
    wrk(wrkBin, url, 2);
    log(`${name}: ${what}, ${connections} connections, ${duration} s`);
    results[name]![what] = wrk(wrkBin, url, duration);
  }
}

try {
  mkdirSync(join(dir, "etc"));
  const config = join(dir, "etc/config");
  writeFileSync(config, `[global]\nbase_path = ${dir}\npublish_path = ${www}\npublic_fqdn = localhost\npublic_http_port = 880\n`);
  const siPort = await freePort();
  const si = spawn(process.execPath, [SI, "--config", config, "serve", "--address", "127.0.0.1", "--http-port", String(siPort), "--https-port", "off", "--no-access-log", "--workers", workers], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    await waitListening(siPort, si, "si serve");
    await drive("si serve", siPort);
  } finally {
    await stop(si, "SIGTERM");
  }

  const ngPort = await freePort();
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    [
      "worker_processes auto;",
      "daemon off;",
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "nginx-error.log")};`,
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      "  sendfile on;",
      "  tcp_nopush on;",
      "  types { application/json json; application/x-xz xz; text/plain asc; }",
      "  default_type application/octet-stream;",
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${join(dir, `nginx-${t}`)};`),
      `  server { listen 127.0.0.1:${ngPort}; root ${www}; }`,
      "}",
      "",
    ].join("\n"),
  );
  const nginx = spawn(nginxBin, ["-c", conf, "-p", dir, "-e", join(dir, "nginx-error.log")], { stdio: ["ignore", "ignore", "inherit"] });
  try {
    await waitListening(ngPort, nginx, "nginx");
    await drive("nginx", ngPort);
  } finally {
    await stop(nginx, "SIGQUIT");
  }

  const rows = Object.keys(paths).map((what) => {
    const ours = results["si serve"]![what]!;
    const ng = results.nginx![what]!;
    const large = what.includes("MB");
    return {
      URL: what,
      "si serve req/s": ours.rps,
      "nginx req/s": ng.rps,
      "si serve MB/s": ours.mbps,
      "nginx MB/s": ng.mbps,
      "ours/nginx": (large ? ours.mbps / ng.mbps : ours.rps / ng.rps).toFixed(2) + (large ? " (MB/s)" : " (req/s)"),
      target: large ? "≥ 0.80" : "≥ 0.50",
      errors: [ours.errors && `si: ${ours.errors}`, ng.errors && `nginx: ${ng.errors}`].filter(Boolean).join("; ") || "-",
    };
  });
  console.log(`wrk -t2 -c${connections} -d${duration}s on 127.0.0.1; si serve --workers ${workers} --no-access-log; nginx worker_processes auto, sendfile on, access_log off; ${execFileSync("nproc").toString().trim()} cores; load average ${load0.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`);
  console.log(table(rows));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
