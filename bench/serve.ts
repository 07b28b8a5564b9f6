/**
 * `npm run bench:serve [-- --duration S] [--rounds N] [--connections N] [--workers N]
 * [--access-log]` (issue 8): one published tree — channels.json, an index.json and a 100 MB
 * pool file — served at the same time by `si serve` and by nginx (sendfile on, 127.0.0.1
 * only, config in a temp dir, as many worker processes as `si serve` has), each driven by
 * wrk (64 connections, 2 threads). Both run without access logs unless `--access-log`
 * (then si logs JSON lines to /dev/null and nginx to a file).
 *
 * The machine is shared and its load drifts, so the two servers are measured in alternation:
 * per URL, `--rounds` rounds (default 6) of `--duration` seconds (default 3) each, the order
 * swapped every round, and the ratio ours/nginx is taken per round; the table shows the
 * median ratio, every round's ratio, and the median CPU time each server spent per request
 * (from /proc: the cost that decides the ratio on a machine that wrk shares). Targets: ≥ 50 % of nginx's requests/s on the JSON files,
 * ≥ 80 % of its throughput on the large file. wrk and nginx are installed with apt-get if
 * missing.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { Socket, createServer, type AddressInfo } from "node:net";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { SI } from "./instance.js";
import { table } from "./proctree.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const duration = Number(opt("--duration", "3"));
const rounds = Number(opt("--rounds", "6"));
const connections = Number(opt("--connections", "64"));
const workers = opt("--workers", "auto");
const accessLog = argv.includes("--access-log");
const workerCount = workers === "auto" ? availableParallelism() : Number(workers);
const log = (s: string) => process.stderr.write(`bench:serve: ${s}\n`);

function ensureTool(bin: string, pkg: string): string {
  for (const dir of ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]) if (existsSync(join(dir, bin))) return join(dir, bin);
  log(`installing ${pkg} with apt-get`);
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", pkg], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
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
    channels[c] = {
      devices: Object.fromEntries(
        ["mako", "hammerhead", "flo", "krillin", "arale"].map((d) => [
          d,
          {
            index: `/${c}/${d}/index.json`,
            keyring: { path: `/${c}/${d}/device-signing.tar.xz`, signature: `/${c}/${d}/device-signing.tar.xz.asc` },
          },
        ]),
      ),
    };
  }
  writeFileSync(join(www, "channels.json"), JSON.stringify(channels, null, 4));
  const images = [];
  for (let v = 1; v <= 20; v++) {
    const file = (name: string, order: number) => ({
      checksum: randomBytes(32).toString("hex"),
      order,
      path: `/pool/${name}-${randomBytes(32).toString("hex")}.tar.xz`,
      signature: "x.asc",
      size: 123456789,
    });
    const detail = `tag=2026-01-${String(v).padStart(2, "0")},ubports=2026010${v},device=7,keyring=archive-master,version=${v}`;
    images.push({
      description: detail,
      files: [file("ubports", 0), file("device", 1), file("keyring", 2), file("version", 3)],
      type: "full",
      version: v,
      version_detail: detail,
    });
    if (v > 1)
      images.push({
        base: v - 1,
        description: detail,
        files: [file("ubports-delta", 0), file("keyring", 1), file("version", 2)],
        type: "delta",
        version: v,
        version_detail: detail,
      });
  }
  writeFileSync(
    join(www, "devel/mako/index.json"),
    JSON.stringify({ global: { generated_at: "Thu Jan  1 00:00:00 UTC 2026" }, images }, null, 4),
  );
  const big = "pool/ubports-0123456789abcdef.tar.xz";
  const fd = openSync(join(www, big), "w");
  for (let i = 0; i < 100; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  return { paths: { "channels.json": "/channels.json", "index.json": "/devel/mako/index.json", "100 MB file": `/${big}` } };
}

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

interface Run {
  rps: number;
  mbps: number;
  errors: string;
  /** CPU time of the server's processes (user + system), seconds. */
  cpuS: number;
  requests: number;
}

/** The process and its direct children (cluster workers, nginx workers). */
function processGroup(pid: number): number[] {
  const children = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return (
          Number(
            readFileSync(`/proc/${d}/stat`, "utf8")
              .replace(/^.*\) /s, "")
              .split(" ")[1],
          ) === pid
        );
      } catch {
        return false;
      }
    });
  return [pid, ...children.map(Number)];
}

/** utime + stime of `pids` in clock ticks (1/100 s on Linux). */
function cpuTicks(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8")
        .replace(/^.*\) /s, "")
        .split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* exited */
    }
  }
  return ticks;
}

/**
 * One wrk run; with `pids`, also the servers' CPU per request: unlike requests/s it hardly
 * depends on what else the machine runs, so it shows the cost even when the load drifts.
 */
function wrk(wrkBin: string, url: string, seconds: number, pids: number[] = []): Run {
  const before = cpuTicks(pids);
  const out = execFileSync(wrkBin, ["-t2", `-c${connections}`, `-d${seconds}s`, "--timeout", "30s", url], { encoding: "utf8" });
  const ticks = cpuTicks(pids) - before;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const t = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out);
  const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses: \d+/.exec(out)?.[0]].filter(Boolean).join("; ");
  return { rps, mbps: t ? (Number(t[1]) * UNITS[t[2]]) / 1e6 : NaN, errors, cpuS: ticks / 100, requests };
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
const load0 = loadavg()[0];

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

const children: ChildProcess[] = [];
try {
  mkdirSync(join(dir, "etc"));
  const config = join(dir, "etc/config");
  writeFileSync(config, `[global]\nbase_path = ${dir}\npublish_path = ${www}\npublic_fqdn = localhost\npublic_http_port = 880\n`);
  const siPort = await freePort();
  const siArgs = [
    "--config",
    config,
    "serve",
    "--address",
    "127.0.0.1",
    "--http-port",
    String(siPort),
    "--https-port",
    "off",
    "--workers",
    workers,
  ];
  if (!accessLog) siArgs.push("--no-access-log");
  const si = spawn(process.execPath, [SI, ...siArgs], { stdio: ["ignore", "ignore", "inherit"] });
  children.push(si);

  const ngPort = await freePort();
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    [
      `worker_processes ${workerCount};`,
      "daemon off;",
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "nginx-error.log")};`,
      "events { worker_connections 1024; }",
      "http {",
      accessLog ? `  access_log ${join(dir, "nginx-access.log")};` : "  access_log off;",
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
  children.push(nginx);
  await waitListening(siPort, si, "si serve");
  await waitListening(ngPort, nginx, "nginx");
  const servers = { "si serve": siPort, nginx: ngPort };
  const pids = { "si serve": processGroup(si.pid!), nginx: processGroup(nginx.pid!) };

  const rows = [];
  for (const [what, path] of Object.entries(paths)) {
    const large = what.includes("MB");
    const runs: Record<string, Run[]> = { "si serve": [], nginx: [] };
    for (const port of Object.values(servers)) {
      const url = `http://127.0.0.1:${port}${path}`;
      execFileSync("curl", ["-fsS", "-o", "/dev/null", url]); // answers 200 at all
      wrk(wrkBin, url, 1); // warm-up
    }
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (["si serve", "nginx"] as const) : (["nginx", "si serve"] as const);
      for (const name of order) {
        log(`${what}, round ${round + 1}/${rounds}: ${name}, ${connections} connections, ${duration} s`);
        runs[name].push(wrk(wrkBin, `http://127.0.0.1:${servers[name]}${path}`, duration, pids[name]));
      }
      const ours = runs["si serve"][round];
      const ng = runs.nginx[round];
      ratios.push(large ? ours.mbps / ng.mbps : ours.rps / ng.rps);
    }
    const errors = (name: string) => [...new Set(runs[name].map((r) => r.errors).filter(Boolean))].join(", ");
    rows.push({
      URL: what,
      "si serve req/s": Math.round(median(runs["si serve"].map((r) => r.rps))),
      "nginx req/s": Math.round(median(runs.nginx.map((r) => r.rps))),
      "si serve MB/s": Math.round(median(runs["si serve"].map((r) => r.mbps))),
      "nginx MB/s": Math.round(median(runs.nginx.map((r) => r.mbps))),
      "ours/nginx (median)": median(ratios).toFixed(2) + (large ? " (MB/s)" : " (req/s)"),
      "per round": ratios.map((r) => r.toFixed(2)).join(" "),
      // Per request for the JSON files; per GB sent for the large file (a 3 s round may
      // finish few of its 100 MB responses, but wrk counts every byte read).
      "server CPU si / nginx":
        ["si serve", "nginx"]
          .map((n) =>
            median(runs[n].map((r) => (large ? r.cpuS / ((r.mbps * duration) / 1000) : (r.cpuS * 1e6) / r.requests))).toFixed(
              large ? 2 : 1,
            ),
          )
          .join(" / ") + (large ? " s/GB" : " µs/req"),
      target: large ? "≥ 0.80" : "≥ 0.50",
      errors:
        [errors("si serve") && `si: ${errors("si serve")}`, errors("nginx") && `nginx: ${errors("nginx")}`].filter(Boolean).join("; ") ||
        "-",
    });
  }
  console.log(
    `wrk -t2 -c${connections}, ${rounds} alternating rounds of ${duration} s per server and URL, on 127.0.0.1; si serve --workers ${workers}${accessLog ? "" : " --no-access-log"}; ` +
      `nginx worker_processes ${workerCount}, sendfile on, ${accessLog ? "access_log to a file" : "access_log off"}; ${availableParallelism()} cores; ` +
      `load average ${load0.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`,
  );
  console.log(table(rows));
} finally {
  await Promise.all(children.map((c, i) => stop(c, i === 0 ? "SIGTERM" : "SIGQUIT")));
  rmSync(dir, { recursive: true, force: true });
}
