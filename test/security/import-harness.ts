/**
 * End-to-end harness for hostile-input tests (issue 13): an instance whose automatic channel
 * `devel` has N devices, each with its own device tarball served over real HTTP on
 * 127.0.0.1; `si import-images` run as a child process in an empty working directory with an
 * empty TMPDIR (so anything written outside the instance shows), its whole process tree's
 * peak RSS sampled from /proc; and hashes of every file of a tree, for byte-identical checks.
 */
import { treeRssKB } from "../../bench/proctree.js";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, lstatSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { encodeGnuHeader } from "../../src/archive/tar/write.js";
import type { TarHeader } from "../../src/archive/tar/types.js";
import { loadConfig } from "../../src/config/load.js";
import { Tree } from "../../src/tree/index.js";
import { REPO, makeInstance, type Instance } from "../helpers/instance.js";
import { makeRootfsV1, serveInputs, tarXz, tmp, type InputServer } from "../importer/fixtures.js";

export interface ImportHarness {
  inst: Instance;
  farm: InputServer;
  devices: string[];
  /** Where the harness keeps its inputs (outside the instance). */
  inputs: string;
  /** Serves `file` as device `device`'s tarball, under a new version (forces a download). */
  serveDevice(device: string, file: string): void;
  close(): Promise<void>;
}

let serial = 0;

/**
 * The instance: one rootfs (`ubports`, shared) and, per device, `file_device,<d>` from
 * `<farm>/<d>.tar.xz` with monitor `<farm>/<d>.version`; `global` lines go to [global].
 */
export async function importHarness(devices: string[], opts: { global?: string[]; rootfsFiles?: number } = {}): Promise<ImportHarness> {
  const farm = await serveInputs();
  const inputs = tmp("si-harness-inputs-");
  makeRootfsV1(join(inputs, "rootfs"), opts.rootfsFiles ?? 100);
  farm.routes.set("/rootfs.tar.xz", { file: tarXz(join(inputs, "rootfs"), join(inputs, "rootfs.tar.xz"), ["system"]) });
  farm.routes.set("/rootfs.version", { body: "1" });
  const entries = devices.map((d) => `device,${d}`);
  const inst = makeInstance({
    extraConfig: [
      ...(opts.global ?? []),
      "http_timeout = 5",
      "http_retries = 0",
      "channels = devel",
      "[channel_devel]",
      "type = auto",
      `files = ubports, ${entries.join(", ")}, version`,
      `file_ubports = http;${farm.url}/rootfs.tar.xz;name=ubports,monitor=${farm.url}/rootfs.version`,
      ...devices.map((d) => `file_device,${d} = http;${farm.url}/${d}.tar.xz;name=device-${d},monitor=${farm.url}/${d}.version`),
      "file_version = version",
      "",
    ].join("\n"),
  });
  const keys = await runCli(inst, ["generate-keyrings"]);
  if (keys.status !== 0) throw new Error(`generate-keyrings failed:\n${keys.stdout}${keys.stderr}`);
  const tree = new Tree(await loadConfig(inst.config));
  await tree.createChannel("devel");
  for (const d of devices) await tree.createDevice("devel", d);
  return {
    inst,
    farm,
    devices,
    inputs,
    serveDevice(device, file) {
      farm.routes.set(`/${device}.tar.xz`, { file });
      farm.routes.set(`/${device}.version`, { body: String(++serial) });
    },
    close: () => farm.close(),
  };
}

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
  /** Peak of the summed RSS of the CLI and all its descendants (xz, gpg), MB. */
  peakRssMB: number;
  /** The working directory and TMPDIR the CLI ran with (empty before the run). */
  cwd: string;
  tmpdir: string;
}

export { treeRssKB };

/** `si --config <inst> ...args` in a fresh empty cwd and TMPDIR, with the tree's peak RSS. */
export function runCli(inst: Instance, args: string[]): Promise<CliRun> {
  const cwd = mkdtempSync(join(tmpdir(), "si-cwd-"));
  const tdir = mkdtempSync(join(tmpdir(), "si-tmpdir-"));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", inst.config, ...args], {
      cwd,
      env: { ...process.env, TMPDIR: tdir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let peak = 0;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setInterval(() => {
      if (child.pid) peak = Math.max(peak, treeRssKB(child.pid));
    }, 50);
    child.on("close", (code) => {
      clearInterval(timer);
      resolve({ status: code ?? -1, stdout, stderr, peakRssMB: peak / 1024, cwd, tmpdir: tdir });
    });
  });
}

/** `si import-images` (JSON log lines on stdout: not a terminal). */
export const runImport = (inst: Instance) => runCli(inst, ["import-images"]);

/** The error lines of an import's JSON log. */
export function errorLines(run: CliRun): { msg: string; channel?: string; device?: string }[] {
  // The user-visible failure: `si: error: <channel>/<device>: <message>` on stderr, one per
  // failed device; the JSON log must hold the same number of error records (nothing hidden).
  const lines = run.stderr.split("\n").filter((l) => l.startsWith("si: error: "));
  const logged = run.stdout.split("\n").filter((l) => l.includes('"level":"error"'));
  if (logged.length !== lines.length)
    throw new Error(`${lines.length} si: error lines but ${logged.length} logged errors:\n${run.stdout}\n${run.stderr}`);
  return lines.map((l) => {
    const rest = l.slice("si: error: ".length);
    const colon = rest.indexOf(": ");
    const where = rest.slice(0, colon);
    const slash = where.lastIndexOf("/");
    return { channel: where.slice(0, slash), device: where.slice(slash + 1), msg: rest.slice(colon + 2) };
  });
}

/** Every file (and symlink) under `root` → sha256 of its bytes (link target for symlinks). */
export function treeHashes(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else out.set(relative(root, p), st.isSymbolicLink() ? `link:${p}` : createHash("sha256").update(readFileSync(p)).digest("hex"));
    }
  };
  walk(root);
  return out;
}

/** Paths added, removed or changed between two treeHashes() snapshots. */
export function treeChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, h] of after) if (before.get(p) !== h) out.push(p);
  for (const p of before.keys()) if (!after.has(p)) out.push(p);
  return out.sort();
}

const fileHeader = (name: string, size: number): TarHeader => ({
  name,
  type: "file",
  mode: 0o644,
  uid: 0,
  gid: 0,
  uname: "root",
  gname: "root",
  mtime: 1_700_000_000,
  size,
});

/**
 * A decompression bomb: a tar.xz whose one member `system/zeros` claims `claimed` bytes of
 * zeros. Made of concatenated xz streams (xz decodes them as one): the header plus 64 MiB of
 * zeros, then the same 64 MiB stream repeated, so a 7 GiB bomb is ~1 MB and takes a second.
 * The archive is cut short after the zeros (the reader never gets there).
 */
export function xzBomb(path: string, claimed: number): void {
  const chunk = 64 * 1024 ** 2;
  const zeros = execFileSync("xz", ["-z", "-c", "-1", "-T1"], { input: Buffer.alloc(chunk), maxBuffer: 1 << 24 });
  const first = execFileSync("xz", ["-z", "-c", "-1", "-T1"], {
    input: Buffer.concat([encodeGnuHeader(fileHeader("system/zeros", claimed)), Buffer.alloc(chunk)]),
    maxBuffer: 1 << 24,
  });
  const parts = [first];
  for (let done = chunk; done < claimed; done += chunk) parts.push(zeros);
  writeFileSync(path, Buffer.concat(parts));
}

const LONG_NAMES_PY = `
import lzma, sys
path, count, nbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def hdr(name, size, flag):
    b = bytearray(512)
    n = name.encode()[:100]
    b[0:len(n)] = n
    b[100:124] = b"0000644\\0" + b"0000000\\0" + b"0000000\\0"
    b[124:136] = ("%011o\\0" % size).encode()
    b[136:148] = ("%011o\\0" % 1700000000).encode()
    b[156:157] = flag
    b[257:265] = b"ustar  \\0"
    b[148:156] = b" " * 8
    b[148:156] = ("%06o\\0 " % sum(b)).encode()
    return bytes(b)
pad = lambda n: b"\\0" * (-n % 512)
stem = "system/" + "a" * (nbytes - 7 - 12)
k = (nbytes - 12) // 512 * 512  # name bytes before the block holding the distinct suffix
fast = [{"id": lzma.FILTER_LZMA2, "dict_size": 4096, "mf": lzma.MF_HC3, "nice_len": 8, "depth": 1, "mode": lzma.MODE_FAST}]
shared = lzma.compress(hdr("././@LongLink", nbytes + 1, b"L") + stem.encode()[:k], preset=1)
with open(path, "wb") as out:
    for i in range(count):
        name = (stem + "%012d" % i).encode() + b"\\0"
        tail = name[k:] + pad(len(name)) + hdr(stem, 1, b"0") + b"x" + pad(1)
        out.write(shared)
        out.write(lzma.compress(tail, filters=fast))
    out.write(lzma.compress(b"\\0" * 10240, preset=1))
`;

/**
 * `count` GNU tar members whose names are `nameBytes` long ('L' records), all distinct
 * (`system/aaa…a<12 digits>`), as a .tar.xz of concatenated xz streams (xz decodes them as
 * one): the 1 MB run of each name is one stream compressed once and repeated, so 2,000 such
 * members take seconds to make, not minutes of compressing 2 GB.
 */
export function longNamesXz(path: string, count: number, nameBytes: number): void {
  execFileSync("python3", ["-c", LONG_NAMES_PY, path, String(count), String(nameBytes)]);
}
