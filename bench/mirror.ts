/**
 * `npm run bench:mirror [-- --scale N] [--xz-level N] [--work DIR] [--keep]` (issue 16): what a
 * mirror push costs for one import with a delta. A v1 tree (one full image) is pushed, then a
 * v2 tree (v2 full + delta 2←1, new index copies, channels.json), then once more with nothing
 * changed, to three mirrors in turn:
 *   - rsync  `type = rsync` over ssh to a real sshd on 127.0.0.1;
 *   - webdav `type = rclone` to a WebDAV remote (`rclone serve webdav` on 127.0.0.1);
 *   - dir    `type = rclone` to a plain local directory.
 * sshd and the WebDAV server sit behind a byte-counting TCP proxy (bench/mirror-servers.ts), so
 * "wire" is what really crossed the network, client to server, whatever the tools report;
 * "reported" is what the push recorded (mirror_pushes.bytes); "changed" is the sum of the sizes
 * of the files that are new or whose content changed since the previous push (sha256 of every
 * published file). The ratios (wire/changed, reported/changed) are what to read on a shared
 * machine; seconds are the wall time of `si mirror push NAME` (node start-up included).
 *
 * Inputs: the /usr-based rootfs pair of `npm run bench` (bench/rootfs.ts) at `--scale`
 * (default 0.2, ~60 MB), kept in bench-work/ for the next run. Imports run with a config
 * without mirrors (so import-images pushes nothing itself); pushes with a copy that lists them.
 */
import { createHash } from "node:crypto";
import { copyFileSync, createReadStream, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { openStateDb } from "../src/state/db.js";
import { parseBenchArgs } from "./args.js";
import { SI, buildFarm, makeBenchInstance } from "./instance.js";
import { addMirrors, startCountingProxy, startRcloneWebdav, startSshd, type CountingProxy, type Stoppable } from "./mirror-servers.js";
import { measure, table } from "./proctree.js";
import { makeRootfsPair } from "./rootfs.js";

const USAGE = `usage: npm run bench:mirror -- [options]

Push time and bytes of a v1 tree, then a v2 tree (an import with a delta), then nothing new, to
an rsync-over-ssh mirror, an rclone WebDAV remote and an rclone local directory, all on 127.0.0.1.

options:
  --scale N      rootfs pair from this machine's /usr: ~310 MB x N (default 0.2)
  --xz-level N   xz_level of the instance (default 1: the pushes, not xz, are measured)
  --work DIR     where generated inputs and the instance live (default bench-work/)
  --keep         keep the instance and the mirrors
  --help         this text
`;
const args = parseBenchArgs(process.argv.slice(2), USAGE, ["--scale", "--xz-level", "--work"], ["--keep"]);
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const work = resolve(args.opt("--work", "bench-work"));
const scale = args.num("--scale", 0.2);
const level = args.num("--xz-level", 1);

type Listing = Map<string, { size: number; sha256: string }>;

/** Every published file (hidden temporaries left out): size and sha256. */
async function listing(root: string): Promise<Listing> {
  const out: Listing = new Map();
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    const rel = join(e.parentPath, e.name).slice(root.length + 1);
    if (!e.isFile() || rel.split("/").some((p) => p.startsWith("."))) continue;
    const h = createHash("sha256");
    let size = 0;
    for await (const c of createReadStream(join(root, rel))) {
      h.update(c as Buffer);
      size += (c as Buffer).length;
    }
    out.set(rel, { size, sha256: h.digest("hex") });
  }
  return out;
}

/** Bytes and count of the files new or changed in `now` relative to `before`. */
function changed(before: Listing, now: Listing): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const [rel, f] of now) {
    if (before.get(rel)?.sha256 === f.sha256) continue;
    files++;
    bytes += f.size;
  }
  return { files, bytes };
}

const mb = (n: number) => (n / 1e6).toFixed(2);
const ratio = (a: number, b: number) => (b === 0 ? (a === 0 ? "-" : "inf") : (a / b).toFixed(3));

const pair = makeRootfsPair(join(work, `usr-scale${scale}`), scale, log);
const routes = new Map<string, { file?: string; body?: string }>([
  ["/rootfs.tar.xz", { file: pair.v1 }],
  ["/rootfs.version", { body: "1\n" }],
]);
const farm = await buildFarm(routes);
const inst = await makeBenchInstance(join(work, "mirror"), farm.url, level);
const mirrors = join(inst.base, "mirrors");
const running: Stoppable[] = [];
const load0 = loadavg()[0];

try {
  const sshd = await startSshd(join(mirrors, "sshd"));
  running.push(sshd);
  const sshProxy = await startCountingProxy(sshd.port);
  running.push(sshProxy);
  // ssh checks the host key under the port it dials: the proxy's.
  const knownHosts = join(mirrors, "known_hosts.proxy");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshProxy.port} ${sshd.hostKey}\n`);
  const dav = await startRcloneWebdav(join(mirrors, "webdav-root"), { workDir: join(mirrors, "rclone"), name: "bench" });
  running.push(dav);
  const davProxy = await startCountingProxy(dav.port);
  running.push(davProxy);
  const davConfig = join(mirrors, "rclone-proxy.conf");
  writeFileSync(davConfig, `[bench]\ntype = webdav\nurl = http://127.0.0.1:${davProxy.port}/\nvendor = other\n`);
  for (const d of ["rsync", "dir"]) mkdirSync(join(mirrors, d), { recursive: true });

  const pushConfig = join(inst.base, "etc/config.mirrors");
  copyFileSync(inst.config, pushConfig);
  addMirrors(pushConfig, {
    rsync: {
      type: "rsync",
      target: `${sshd.user}@127.0.0.1:${join(mirrors, "rsync")}`,
      ssh_key: sshd.clientKey,
      ssh_port: sshProxy.port,
      ssh_known_hosts: knownHosts,
    },
    webdav: { type: "rclone", remote: "bench:www", rclone_config: davConfig },
    dir: { type: "rclone", remote: join(mirrors, "dir") },
  });
  const wire: Record<string, CountingProxy | undefined> = { rsync: sshProxy, webdav: davProxy, dir: undefined };
  const db = openStateDb(join(inst.base, "state"));
  const reported = (name: string) =>
    db.prepare("SELECT bytes, files, outcome FROM mirror_pushes WHERE mirror = ? ORDER BY id DESC LIMIT 1").get(name) as
      { bytes: number; files: number; outcome: string } | undefined;

  const rows: Record<string, string | number>[] = [];
  let before: Listing = new Map();
  const pushAll = async (step: string) => {
    const now = await listing(inst.publish);
    const delta = changed(before, now);
    const total = [...now.values()].reduce((s, f) => s + f.size, 0);
    log(`${step}: ${delta.files} files changed, ${mb(delta.bytes)} MB of ${mb(total)} MB`);
    for (const name of ["rsync", "webdav", "dir"]) {
      wire[name]?.reset();
      const c = await measure(process.execPath, [SI, "--config", pushConfig, "mirror", "push", name]);
      const r = reported(name);
      if (c.exitCode !== 0 || r?.outcome !== "ok")
        throw new Error(`${step}: si mirror push ${name} failed (exit ${c.exitCode}, ${r?.outcome})`);
      const sent = wire[name]?.sent();
      rows.push({
        step,
        mirror: name,
        "push s": c.wallS,
        "files sent": r.files,
        "changed MB": mb(delta.bytes),
        "reported MB": mb(r.bytes),
        "wire MB": sent === undefined ? "-" : mb(sent),
        "reported/changed": ratio(r.bytes, delta.bytes),
        "wire/changed": sent === undefined ? "-" : ratio(sent, delta.bytes),
      });
    }
    before = now;
  };

  // Not inst.si(): a blocking call would stall the build farm, which this process serves.
  const importRun = async (step: string) => {
    const c = await measure(process.execPath, [SI, "--config", inst.config, "import-images"]);
    if (c.exitCode !== 0) throw new Error(`${step} failed with exit code ${c.exitCode}`);
  };
  log("import v1");
  await importRun("import v1");
  await pushAll("v1 (full)");
  routes.set("/rootfs.tar.xz", { file: pair.v2 });
  routes.set("/rootfs.version", { body: "2\n" });
  log("import v2 (full + delta)");
  await importRun("import v2");
  await pushAll("v2 (full + delta)");
  await pushAll("nothing new");
  db.close();

  console.log(`# mirror push (${pair.summary}; xz_level ${level})\n`);
  console.log(table(rows));
  console.log(
    `\n1-minute load average: ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end (${availableParallelism()} cores)`,
  );
} finally {
  for (const r of running.reverse()) await r.stop();
  await farm.close();
  if (!args.flag("--keep")) rmSync(inst.base, { recursive: true, force: true });
  else log(`kept ${inst.base}`);
}
