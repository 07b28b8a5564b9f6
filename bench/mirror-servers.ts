/**
 * Real mirror endpoints for the mirror tests and `npm run bench:mirror` (issue 16), each on
 * 127.0.0.1 with an ephemeral port and its files under a directory the caller owns:
 *   - startSshd: Debian's /usr/sbin/sshd as the current user, key login only, with a generated
 *     host key and client key (rsync over ssh pushes to it);
 *   - startNginxOver: nginx serving a directory (what devices read from a mirror), access log on;
 *   - startRcloneWebdav: `rclone serve webdav` over a directory, plus an rclone config file
 *     naming it as a webdav remote;
 *   - startCountingProxy: a TCP proxy counting the bytes a push really sends;
 *   - addMirrors: the `mirrors =` line and `[mirror_<name>]` sections of an instance's config.
 * They live in bench/ because `npm run bench:mirror` uses them and bench/ is compiled with the
 * project (tsconfig `include`), which test/ is not; tests import test/helpers/mirror-servers.ts.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export interface Stoppable {
  /** Stops the process and waits for it to exit. */
  stop(): Promise<void>;
}

export interface RunningSshd extends Stoppable {
  port: number;
  /** The login name (the user running the tests). */
  user: string;
  /** Private key accepted by this sshd (mode 0600). */
  clientKey: string;
  /** A known_hosts file with `[127.0.0.1]:PORT <host key>`. */
  knownHostsFile: string;
  /** The host's public key, `ssh-ed25519 AAAA…` (for a known_hosts line of another port, e.g. a proxy). */
  hostKey: string;
  /** `ssh` arguments that log in with the key and check the host key (no host). */
  sshArgs: string[];
  /** sshd's own log (-e). */
  logFile: string;
}

export interface RunningNginx extends Stoppable {
  port: number;
  /** `http://127.0.0.1:PORT/` */
  url: string;
  /** One line per request: `$request_method $uri $status $body_bytes_sent`. */
  accessLog: string;
  errorLog: string;
}

export interface RunningRclone extends Stoppable {
  port: number;
  /** `http://127.0.0.1:PORT/` */
  url: string;
  /** `<name>:` — the remote's root is the served directory. */
  remote: string;
  /** rclone config file holding `[<name>] type = webdav ...`. */
  configFile: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
      .on("error", reject)
      .listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `child` has exited (at once if it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once("exit", () => r()));
}

function stopper(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited(child);
  };
}

/** Waits until `ready()` holds, failing early (with `log`) if the process dies. */
async function waitReady(child: ChildProcess, what: string, log: () => string, ready: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Cannot start ${what}: it exited\n${log()}`);
    if (await ready()) return;
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error(`Cannot start ${what}: not ready after 15 s\n${log()}`);
}

const tcpOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });

const httpStatus = (url: string, method = "GET") =>
  new Promise<number>((resolve) => {
    const req = request(url, { method }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once("error", () => resolve(0));
    req.end();
  });

const readOr = (file: string) => (existsSync(file) ? readFileSync(file, "utf8") : "");

/**
 * A real sshd on 127.0.0.1:PORT for the current user (root in CI): public-key login only with
 * a generated client key, a generated ed25519 host key, no PAM. Config, keys, pid and log live
 * in `dir` (created). Push with `rsync -e "ssh <sshArgs>" ... user@127.0.0.1:/path`.
 */
export async function startSshd(dir: string): Promise<RunningSshd> {
  mkdirSync(dir, { recursive: true });
  // Debian's sshd refuses to start without its privilege separation directory (compiled in,
  // no option changes it); it is made by the service unit, which the tests do not run.
  if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });
  const hostKey = join(dir, "host_ed25519");
  const clientKey = join(dir, "client_ed25519");
  for (const k of [hostKey, clientKey]) {
    if (!existsSync(k)) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "si-test", "-f", k]);
  }
  const port = await freePort();
  const user = userInfo().username;
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${clientKey}.pub`,
      "PermitRootLogin prohibit-password",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      // The temp dirs are not root-owned 0755 all the way up.
      "StrictModes no",
      `AllowUsers ${user}`,
      // rsync needs nothing more; keep the box quiet.
      "PrintMotd no",
      "X11Forwarding no",
      "AllowTcpForwarding no",
      // Pushes in a loop open many connections at once; the default 10:30:100 drops some.
      "MaxStartups 100",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  const knownHostsFile = join(dir, "known_hosts");
  const hostPub = readFileSync(`${hostKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostPub}\n`);
  chmodSync(clientKey, 0o600);
  const sshd = "/usr/sbin/sshd"; // sshd re-execs itself, so it must be started by absolute path
  const check = spawnSync(sshd, ["-t", "-f", config], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`Cannot start sshd: config check failed: ${check.stderr}`);
  const logFile = join(dir, "sshd.log");
  writeFileSync(logFile, "");
  const child = spawn(sshd, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr.on("data", (d: Buffer) => writeFileSync(logFile, d, { flag: "a" }));
  const sshArgs = [
    "-p",
    String(port),
    "-i",
    clientKey,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    `UserKnownHostsFile=${knownHostsFile}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
  ];
  await waitReady(
    child,
    "sshd",
    () => readOr(logFile),
    () => tcpOpen(port),
  );
  const login = spawnSync("ssh", [...sshArgs, `${user}@127.0.0.1`, "true"], { encoding: "utf8", timeout: 20_000 });
  if (login.status !== 0) {
    child.kill();
    throw new Error(`Cannot log in to the test sshd on port ${port}: ${login.stderr}\n${readOr(logFile)}`);
  }
  return { port, user, clientKey, knownHostsFile, hostKey: hostPub, sshArgs, logFile, stop: stopper(child) };
}

export interface NginxOptions {
  /** Where config, pid, logs and temp paths go (default: a new temp dir). */
  workDir?: string;
  /** More directives inside the server block (e.g. a purge location). */
  serverExtra?: string;
  /** More directives inside the http block (e.g. proxy_cache_path). */
  httpExtra?: string;
}

/**
 * nginx serving `root` on 127.0.0.1:PORT, as a mirror's web server would: static files,
 * JSON typed, access log on.
 */
export async function startNginxOver(root: string, opts: NginxOptions = {}): Promise<RunningNginx> {
  const dir = opts.workDir ?? mkdtempSync(join(tmpdir(), "si-nginx-"));
  mkdirSync(join(dir, "tmp"), { recursive: true });
  const port = await freePort();
  const accessLog = join(dir, "access.log");
  const errorLog = join(dir, "error.log");
  const tmp = join(dir, "tmp");
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    // Workers must read the 0700 temp trees: as root (CI), keep them as root.
    `${process.getuid?.() === 0 ? "user root;\n" : ""}daemon off;\npid ${join(dir, "nginx.pid")};\nerror_log ${errorLog};\n` +
      `worker_processes 1;\nevents { worker_connections 256; }\n` +
      `http {\n  log_format mirror '$request_method $uri $status $body_bytes_sent';\n  access_log ${accessLog} mirror;\n` +
      `  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi;\n` +
      `  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;\n` +
      `  types { application/json json; text/plain asc; application/x-xz xz; }\n  default_type application/octet-stream;\n` +
      `  sendfile on;\n${opts.httpExtra ?? ""}\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    root ${root};\n    location / { }\n${opts.serverExtra ?? ""}\n  }\n}\n`,
  );
  const check = spawnSync("nginx", ["-t", "-q", "-p", dir, "-c", conf], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`Cannot start nginx: config check failed: ${check.stderr}`);
  const child = spawn("nginx", ["-p", dir, "-c", conf], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}/`;
  await waitReady(
    child,
    "nginx",
    () => readOr(errorLog),
    async () => (await httpStatus(url, "HEAD")) !== 0,
  );
  // SIGQUIT: graceful shutdown (workers finish their requests).
  return { port, url, accessLog, errorLog, stop: stopper(child, "SIGQUIT") };
}

/**
 * `rclone serve webdav root` on 127.0.0.1:PORT, and an rclone config file (in `workDir`, default
 * a new temp dir) with a webdav remote `name` (default "mirror") pointing at it: pushing to
 * `<name>:path` writes `root/path`.
 */
export async function startRcloneWebdav(root: string, opts: { workDir?: string; name?: string } = {}): Promise<RunningRclone> {
  const dir = opts.workDir ?? mkdtempSync(join(tmpdir(), "si-rclone-"));
  const name = opts.name ?? "mirror";
  mkdirSync(root, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const configFile = join(dir, "rclone.conf");
  writeFileSync(configFile, `[${name}]\ntype = webdav\nurl = ${url}\nvendor = other\n`);
  const logFile = join(dir, "rclone-serve.log");
  const serveConfig = join(dir, "rclone-serve.conf"); // empty: the served side needs no remote
  writeFileSync(serveConfig, "");
  const child = spawn(
    "rclone",
    ["serve", "webdav", root, "--addr", `127.0.0.1:${port}`, "--config", serveConfig, "--log-file", logFile, "--log-level", "NOTICE"],
    { stdio: "ignore" },
  );
  await waitReady(
    child,
    "rclone serve webdav",
    () => readOr(logFile),
    async () => (await httpStatus(url)) === 200,
  );
  return { port, url, remote: `${name}:`, configFile, stop: stopper(child) };
}

export interface CountingProxy extends Stoppable {
  port: number;
  /** Bytes the clients sent to the target, and the target sent back, since the start or reset(). */
  sent(): number;
  received(): number;
  reset(): void;
}

/**
 * A TCP proxy on 127.0.0.1 in front of `targetPort` that counts the bytes on the wire, both
 * ways: what a push really sent (rsync over ssh, rclone over WebDAV), whatever the tool reports.
 */
export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  let up = 0;
  let down = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const target = connect(targetPort, "127.0.0.1");
    for (const s of [client, target]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => (client.destroy(), target.destroy()));
    }
    client.on("data", (d: Buffer) => (up += d.length));
    target.on("data", (d: Buffer) => (down += d.length));
    client.pipe(target);
    target.pipe(client);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as { port: number };
  return {
    port,
    sent: () => up,
    received: () => down,
    reset: () => void (up = down = 0),
    stop: () =>
      new Promise<void>((ok) => {
        for (const s of sockets) s.destroy();
        server.close(() => ok());
      }),
  };
}

/**
 * Adds mirrors to an instance's etc/config: `mirrors = a, b` in [global] (replacing any such
 * line) and one `[mirror_<name>]` section each, keys in the order given.
 */
export function addMirrors(configPath: string, mirrors: Record<string, Record<string, string | number>>): void {
  const names = Object.keys(mirrors);
  const lines = readFileSync(configPath, "utf8")
    .split("\n")
    .filter((l) => !/^\s*mirrors\s*=/.test(l));
  const at = lines.findIndex((l) => l.trim() === "[global]");
  if (at < 0) throw new Error(`Cannot add mirrors to ${configPath}: no [global] section`);
  lines.splice(at + 1, 0, `mirrors = ${names.join(", ")}`);
  const sections = names.flatMap((n) => [`[mirror_${n}]`, ...Object.entries(mirrors[n]).map(([k, v]) => `${k} = ${v}`), ""]);
  writeFileSync(configPath, [...lines, "", ...sections].join("\n"));
}
