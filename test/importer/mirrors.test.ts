/**
 * Mirror triggers (server-reference §4.4; issue 15 item 4). A fake `ssh` first on PATH
 * records its arguments, checks from outside whether the global lock is free while it runs
 * (it tries to take it, as another command would), and waits for the other mirror's ssh to
 * have started too (a barrier: sequential triggers never get past it). The build farm is real
 * HTTP on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runSsh, syncMirrors } from "../../src/config/mirrors.js";
import { createLogger } from "../../src/io/log.js";
import { REPO, runSiAsync, type Instance } from "../helpers/instance.js";
import { makeDeviceTree, serveInputs, standardInstance, tarXz, tmp, type InputServer } from "./fixtures.js";

const HOST_A = "hosta.example.net";
const HOST_B = "hostb.example.net";

/** Mirror a and b in the config; `global` lines go to [global]. */
async function mirroredInstance(farm: InputServer, global: string[]): Promise<Instance> {
  const inst = await standardInstance(farm.url, { files: ["device", "version"] });
  // Added once the instance is set up: the setup itself must not trigger anything.
  writeFileSync(
    inst.config,
    readFileSync(inst.config, "utf8").replace("[global]\n", ["[global]", "mirrors = b, a", ...global, ""].join("\n")),
  );
  appendFileSync(
    inst.config,
    [
      "[mirror_default]",
      "ssh_user = mirror",
      "ssh_key = secret/ssh/mirror",
      "ssh_port = 22",
      "ssh_command = sync-mirror",
      "[mirror_a]",
      `ssh_host = ${HOST_A}`,
      "[mirror_b]",
      `ssh_host = ${HOST_B}`,
      "ssh_port = 2222",
      "",
    ].join("\n"),
  );
  return inst;
}

interface FakeSsh {
  env: NodeJS.ProcessEnv;
  dir: string;
  /** Lines `HOST both=yes|no lock=free|busy`, one per trigger that got that far. */
  seen(): string[];
  argv(): string[];
}

/**
 * The fake ssh. Per host (second-to-last argument): `script[host]` runs after the barrier and
 * the lock check (default: exit 0). It also writes ssh-style noise on stderr, which must
 * never reach the operator raw.
 */
function fakeSsh(inst: Instance, script: Record<string, string> = {}): FakeSsh {
  const dir = join(inst.base, "fake-ssh");
  mkdirSync(dir, { recursive: true });
  const lockModule = pathToFileURL(join(REPO, "dist/src/io/lock.js")).href;
  // "free" as soon as one attempt gets the lock within 2 s (the other mirror's check may hold it a moment).
  writeFileSync(
    join(dir, "lockcheck.mjs"),
    `const { acquireGlobalLock } = await import(${JSON.stringify(lockModule)});
let r = "busy";
for (let i = 0; i < 40 && r === "busy"; i++) {
  try { acquireGlobalLock(${JSON.stringify(inst.state)}, { holder: "lock check" }).release(); r = "free"; }
  catch { await new Promise((s) => setTimeout(s, 50)); }
}
console.log(r);
`,
  );
  const cases = Object.entries(script)
    .map(([host, body]) => `  ${host}) ${body} ;;`)
    .join("\n");
  writeFileSync(
    join(dir, "ssh"),
    `#!/bin/sh
d='${dir}'
echo "$*" >> "$d/argv.log"
host=''; prev=''
for a in "$@"; do host="$prev"; prev="$a"; done
touch "$d/started-$host"
n=0
while [ ! -e "$d/started-${HOST_A}" ] || [ ! -e "$d/started-${HOST_B}" ]; do
  n=$((n + 1)); [ $n -gt 150 ] && break; sleep 0.1
done
both=yes; [ $n -gt 150 ] && both=no
lock=$('${process.execPath}' "$d/lockcheck.mjs")
echo "$host both=$both lock=$lock" >> "$d/seen.log"
echo "Warning: Permanently added '$host' (ED25519) to the list of known hosts." >&2
case "$host" in
${cases}
esac
exit 0
`,
  );
  chmodSync(join(dir, "ssh"), 0o755);
  const lines = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8").trim().split("\n") : []);
  return { env: { PATH: `${dir}:${process.env.PATH}` }, dir, seen: () => lines("seen.log").sort(), argv: () => lines("argv.log").sort() };
}

/** The JSON log lines of a command that name a mirror. */
function mirrorLines(stdout: string): { level: string; msg: string; mirror: string; outcome: string; duration_ms: number }[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { level: string; msg: string; mirror?: string; outcome: string; duration_ms: number })
    .filter((l): l is { level: string; msg: string; mirror: string; outcome: string; duration_ms: number } => typeof l.mirror === "string")
    .sort((a, b) => a.mirror.localeCompare(b.mirror));
}

describe("mirror triggers (server-reference §4.4, issue 15 item 4)", () => {
  let farm: InputServer;
  let deviceTar: string;
  beforeAll(async () => {
    farm = await serveInputs();
    const src = tmp("si-mirror-inputs-");
    makeDeviceTree(join(src, "device"));
    deviceTar = tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"]);
    farm.routes.set("/device.tar.xz", { file: deviceTar });
    farm.routes.set("/device.version", { body: "1" });
  });
  afterAll(() => farm?.close());

  it("import-images: after the lock, all mirrors at once, BatchMode + ConnectTimeout, one line each; nothing new triggers nothing", async () => {
    const inst = await mirroredInstance(farm, ["mirror_connect_timeout = 7", "mirror_timeout = 60"]);
    const ssh = fakeSsh(inst, { [HOST_B]: `echo "ssh: connect to host ${HOST_B} port 2222: Connection refused" >&2; exit 255` });
    const r = await runSiAsync(["--config", inst.config, "import-images"], { env: ssh.env });
    // ssh's exit status never fails an import, like the reference.
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const key = join(inst.base, "secret/ssh/mirror");
    expect(ssh.argv()).toEqual([
      `-o BatchMode=yes -o ConnectTimeout=7 -i ${key} -l mirror -p 22 ${HOST_A} sync-mirror`,
      `-o BatchMode=yes -o ConnectTimeout=7 -i ${key} -l mirror -p 2222 ${HOST_B} sync-mirror`,
    ]);
    // Both ran at the same time, and neither held another command off the lock.
    expect(ssh.seen()).toEqual([`${HOST_A} both=yes lock=free`, `${HOST_B} both=yes lock=free`]);
    // One line per mirror with its outcome and duration; ssh's own output stays off the terminal.
    const lines = mirrorLines(r.stdout);
    expect(lines.map((l) => [l.mirror, l.level, l.outcome])).toEqual([
      ["a", "info", "ok"],
      ["b", "warn", "failed"],
    ]);
    expect(lines[0].msg).toMatch(new RegExp(`^mirror a \\(${HOST_A}\\) triggered in \\d+(\\.\\d)? s$`));
    expect(lines[1].msg).toMatch(
      new RegExp(
        `^mirror b \\(${HOST_B}\\) not triggered after \\d+(\\.\\d)? s: ssh exited with status 255: ssh: connect to host ${HOST_B} port 2222: Connection refused$`,
      ),
    );
    for (const l of lines) expect(l.duration_ms).toBeGreaterThanOrEqual(0);
    expect(r.stdout + r.stderr).not.toContain("Permanently added");

    // Nothing new on the build farm: the tree does not change, so no mirror is asked.
    const again = await runSiAsync(["--config", inst.config, "import-images"], { env: ssh.env });
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain("nothing new");
    expect(ssh.argv()).toHaveLength(2);
    expect(mirrorLines(again.stdout)).toEqual([]);
  });

  it("a slow mirror never keeps the next import from the lock", async () => {
    const inst = await mirroredInstance(farm, ["mirror_timeout = 120"]);
    // Both wait for the test to open a gate: the first import is surely still running.
    const gated = `n=0; while [ ! -e "$d/gate" ] && [ $n -lt 1200 ]; do n=$((n + 1)); sleep 0.1; done`;
    const ssh = fakeSsh(inst, { [HOST_A]: gated, [HOST_B]: gated });
    const first = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", inst.config, "import-images"], {
      env: { ...process.env, ...ssh.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    first.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    first.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    let running = true;
    const ended = new Promise<number | null>((ok) => first.once("close", ok)).finally(() => (running = false));
    for (let i = 0; ssh.seen().length < 2 && i < 1200; i++) await new Promise((r) => setTimeout(r, 50));
    expect(ssh.seen(), out).toHaveLength(2);
    // The first import is in its mirror phase: a second one gets the lock and finds nothing new.
    const second = await runSiAsync(["--config", inst.config, "import-images"], { env: ssh.env });
    expect(running).toBe(true);
    writeFileSync(join(ssh.dir, "gate"), "");
    expect(second.status, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).not.toContain("holds the global lock");
    expect(second.stdout).toContain("nothing new");
    expect(await ended, out).toBe(0);
    expect(mirrorLines(out).map((l) => [l.mirror, l.outcome])).toEqual([
      ["a", "ok"],
      ["b", "ok"],
    ]);
  });

  it("a hung ssh is stopped after mirror_timeout; the other mirror is not held up", async () => {
    const dir = tmp("si-mirror-hung-");
    const pidFile = join(dir, "hung.pid");
    const fake = join(dir, "ssh");
    // For hostb: note its pid, then become a process that never ends.
    writeFileSync(
      fake,
      `#!/bin/sh\nfor a in "$@"; do host="$prev"; prev="$a"; done\n[ "$host" = "${HOST_B}" ] || exit 0\necho $$ > '${pidFile}'\nexec sleep 600\n`,
    );
    chmodSync(fake, 0o755);
    const mirror = (name: string, host: string) => ({
      name,
      type: "trigger" as const,
      ssh_host: host,
      ssh_user: "u",
      ssh_key: "/k",
      ssh_port: 22,
      ssh_command: "c",
    });
    const logged: string[] = [];
    const log = createLogger({ json: false, level: "info", write: (l) => logged.push(l) });
    const results = await syncMirrors(
      { mirrors: { a: mirror("a", HOST_A), b: mirror("b", HOST_B) }, mirror_timeout: 1 },
      { log, run: (argv, o) => runSsh([fake, ...argv.slice(1)], o) },
    );
    expect(results.map((r) => [r.name, r.outcome, r.error])).toEqual([
      ["a", "ok", undefined],
      ["b", "timeout", "stopped after 1 s (mirror_timeout)"],
    ]);
    // The hung ssh is gone, not left behind.
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    expect(logged).toHaveLength(2);
    expect(logged.find((l) => l.includes("mirror b"))).toMatch(
      /^W: mirror b \(hostb\.example\.net\) not triggered after \d+(\.\d)? s: stopped after 1 s \(mirror_timeout\)/,
    );
  });

  it("admin commands trigger with the lock released, also those that finish inside it (cleanup-tree); failures are one line", async () => {
    const inst = await mirroredInstance(farm, []);
    const ssh = fakeSsh(inst, { [HOST_B]: `echo "Permission denied (publickey)." >&2; exit 255` });
    for (const args of [["channel", "create", "extra"], ["cleanup-tree"]]) {
      const before = ssh.seen().length;
      for (const h of [HOST_A, HOST_B]) rmSync(join(ssh.dir, `started-${h}`), { force: true }); // a fresh barrier
      const r = await runSiAsync(["--config", inst.config, ...args], { env: ssh.env });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(ssh.seen(), args.join(" ")).toHaveLength(before + 2);
      expect(r.stdout + r.stderr).not.toContain("Permanently added");
      const failures = r.stderr.split("\n").filter((l) => l.includes("mirror"));
      expect(failures, args.join(" ")).toEqual([
        expect.stringMatching(
          new RegExp(
            `^W: mirror b \\(${HOST_B}\\) not triggered after \\d+(\\.\\d)? s: ssh exited with status 255: Permission denied \\(publickey\\)\\.`,
          ),
        ),
      ]);
    }
    expect(ssh.seen()).toEqual([
      `${HOST_A} both=yes lock=free`,
      `${HOST_A} both=yes lock=free`,
      `${HOST_B} both=yes lock=free`,
      `${HOST_B} both=yes lock=free`,
    ]);
  });
});
