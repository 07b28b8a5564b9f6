/**
 * `npm run test:crash [-- --kills N] [--seed S] [--files N]` (issue 9): SIGKILLs `si
 * import-images`, `si copy-image`, `si tag-image` and `si generate-keyrings` at random
 * moments of realistic runs (a build farm on 127.0.0.1, real xz, real signing) and after
 * each kill checks, with verify-tree as the oracle:
 *   - the tree verifies (every document matches its signature, every named file is there
 *     with its checksum), and the keyrings still read and verify;
 *   - the next run of the same command completes, the tree verifies again, and no orphan
 *     and no leftover temporary remains after an import (it ends with cleanup);
 *   - no image that was published before the kill is gone ("lost images").
 * Prints "N kills, N consistent trees, 0 lost images". The short form runs inside `npm test`
 * (test/crash/crash.test.ts) with the same code.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "../src/config/types.js";
import { readKeyringTarball } from "../src/pgp/keyring.js";
import { readPublicKeys, loadPublicKeyFile } from "../src/pgp/keys.js";
import { verifyFile } from "../src/pgp/verify.js";
import { keyringSigner } from "../src/pgp/keyring-plan.js";
import type { KeyName } from "../src/pgp/signer.js";
import { verifyTree } from "../src/verify/index.js";
import { formatReport } from "../src/verify/report.js";
import { buildFarm } from "./instance.js";
import { repoRoot, standardInstance } from "./standard-instance.js";
import { mulberry32 } from "./rng.js";

const REPO = repoRoot();
const SI = join(REPO, "bin/si.js");

export type CrashCommand = "import-images" | "copy-image" | "tag-image" | "generate-keyrings";

export interface CrashOptions {
  kills: number;
  seed?: number;
  /** Files in the generated rootfs (more = longer imports). */
  files?: number;
  commands?: CrashCommand[];
  log?: (line: string) => void;
  keep?: boolean;
}

export interface CrashResult {
  kills: number;
  consistent: number;
  lostImages: number;
  /** One line per failed check. */
  failures: string[];
  byCommand: Record<string, number>;
  /** Runs started per command, killed or not (a fast one may finish before its kill). */
  attempted: Record<string, number>;
  summary: string;
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  ms: number;
}

function runSi(config: string, args: string[], killAfterMs?: number): Promise<Run> {
  return new Promise((ok) => {
    const start = Date.now();
    const child = spawn(process.execPath, [SI, "--config", config, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("close", (status, signal) => {
      if (timer) clearTimeout(timer);
      ok({ status, signal, out, ms: Date.now() - start });
    });
  });
}

function makeRootfs(root: string, files: number, salt: string): void {
  for (let i = 0; i < files; i++) {
    const dir = join(root, "system/usr/share", `pkg${i % 40}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `file${i}`), `${salt}:${i}:${"x".repeat(i % 900)}\n`);
  }
}

function makeTarXz(src: string, out: string, members: string[]): Promise<string> {
  const tar = spawn("tar", [
    "--format=gnu",
    "--sort=name",
    "--owner=0",
    "--group=0",
    "--mtime=@1600000000",
    "-C",
    src,
    "-cJf",
    out,
    ...members,
  ]);
  return new Promise((ok, bad) => tar.on("close", (c) => (c === 0 ? ok(out) : bad(new Error(`tar exit ${c}`)))));
}

/** image versions per channel/device from the published indexes. */
function publishedImages(pub: string): Set<string> {
  const out = new Set<string>();
  const chPath = join(pub, "channels.json");
  if (!existsSync(chPath)) return out;
  const channels = JSON.parse(readFileSync(chPath, "utf8")) as Record<string, { devices?: Record<string, { index: string }> }>;
  for (const [ch, c] of Object.entries(channels)) {
    for (const [dev, d] of Object.entries(c.devices ?? {})) {
      const p = join(pub, d.index);
      if (!existsSync(p)) continue;
      const idx = JSON.parse(readFileSync(p, "utf8")) as { images: Array<{ type: string; version: number; base?: number }> };
      for (const i of idx.images) out.add(`${ch}/${dev} ${i.type} ${i.version}${i.base ? ` from ${i.base}` : ""}`);
    }
  }
  return out;
}

/** Hidden temporaries (".name.new-…", ".name.tmp-…") left in the tree. */
function leftovers(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.name.startsWith(".")) out.push(p);
    else if (e.isDirectory()) out.push(...leftovers(p));
  }
  return out;
}

/** Every keyring in gpg_keyring_path reads and is signed by the key that must sign it. */
async function checkKeyrings(config: Config): Promise<string[]> {
  const bad: string[] = [];
  for (const name of ["archive-master", "image-master", "image-signing", "device-signing", "blacklist"] as KeyName[]) {
    const file = join(config.gpg_keyring_path, `${name}.tar.xz`);
    if (!existsSync(file)) continue;
    try {
      await readKeyringTarball(file);
      const signer = await readPublicKeys(await loadPublicKeyFile(config.gpg_key_path, keyringSigner(name)));
      await verifyFile(file, readFileSync(`${file}.asc`, "utf8"), signer);
    } catch (err) {
      bad.push(`${file}: ${(err as Error).message}`);
    }
  }
  return bad;
}

async function treeProblems(config: Config, orphansToo: boolean): Promise<string[]> {
  const rep = await verifyTree(config, {});
  const lines = rep.problems.filter((p) => p.severity === "error" || (orphansToo && /orphan/.test(p.message)));
  return lines.length ? formatReport(rep).filter((l) => !/^(I|OK)/.test(l)) : [];
}

export interface CrashInstance {
  work: string;
  config: Config;
  configPath: string;
  farm: { url: string; close(): Promise<void> };
  /** A new monitor value: the next import has a new image to publish. */
  bump: () => void;
  si: (args: string[], killAfterMs?: number) => Promise<Run>;
  /** Runs si and throws with its output unless it exits 0. */
  must: (args: string[]) => Promise<Run>;
}

export async function setupCrashInstance(opts: { files?: number } = {}): Promise<CrashInstance> {
  const work = mkdtempSync(join(tmpdir(), "si-crash-"));
  const src = join(work, "src");
  makeRootfs(join(src, "rootfs"), opts.files ?? 400, "a");
  mkdirSync(join(src, "device/partitions"), { recursive: true });
  writeFileSync(join(src, "device/partitions/boot.img"), Buffer.alloc(256 << 10, 0x42));
  const rootfs = await makeTarXz(join(src, "rootfs"), join(work, "rootfs.tar.xz"), ["system"]);
  const device = await makeTarXz(join(src, "device"), join(work, "device.tar.xz"), ["partitions"]);
  let serial = 0;
  const routes = new Map<string, { file?: string; body?: string }>([
    ["/rootfs.tar.xz", { file: rootfs }],
    ["/rootfs.version", { body: "0" }],
    ["/device.tar.xz", { file: device }],
  ]);
  const farm = await buildFarm(routes);
  const { configPath, config } = await standardInstance(farm.url, {
    base: join(work, "instance"),
    global: ["xz_level = 1", "http_retries = 0"],
    fullcount: 0, // keep every image: any that disappears is lost
    // A new monitor value each round: a new pool name, a new image, deltas from the last ones.
    deviceMonitor: "/rootfs.version",
    manualChannels: ["stable"],
    publish: ["archive-master", "image-master", "image-signing", "device-signing", "blacklist"],
  });
  const si = (args: string[], kill?: number) => runSi(configPath, args, kill);
  const must = async (args: string[]) => {
    const r = await si(args);
    if (r.status !== 0) throw new Error(`si ${args.join(" ")} failed (${r.status}):\n${r.out}`);
    return r;
  };

  const bump = () => routes.set("/rootfs.version", { body: String(++serial) });
  bump();
  return { work, config, configPath, farm, bump, si, must };
}

export async function runCrashCampaign(opts: CrashOptions): Promise<CrashResult> {
  const log = opts.log ?? (() => {});
  const rand = mulberry32(opts.seed ?? 1);
  const commands = opts.commands ?? ["import-images", "copy-image", "tag-image", "generate-keyrings"];
  const { work, config, farm, bump, si, must } = await setupCrashInstance(opts);
  const first = await must(["import-images"]);
  await must(["copy-image", "devel", "stable", "mako"]);
  // Durations for the kill windows, measured on this machine.
  const span: Record<CrashCommand, number> = { "import-images": first.ms, "copy-image": 0, "tag-image": 0, "generate-keyrings": 0 };
  bump();
  span["copy-image"] = (await must(["import-images"]).then(() => must(["copy-image", "devel", "stable", "mako"]))).ms;
  span["tag-image"] = (await must(["tag-image", "stable", "mako", String(latest(config, "stable")), "t0"])).ms;
  span["generate-keyrings"] = (await must(["generate-keyrings", "--force"])).ms;
  log(`I: run times (ms): ${JSON.stringify(span)}`);

  const result: CrashResult = { kills: 0, consistent: 0, lostImages: 0, failures: [], byCommand: {}, attempted: {}, summary: "" };
  // Counts only runs that the kill really interrupted; a run that finished first is still checked.
  for (let i = 0; result.kills < opts.kills && i < opts.kills * 3; i++) {
    const cmd = commands[i % commands.length];
    if (cmd === "import-images") bump();
    const args =
      cmd === "import-images"
        ? ["import-images"]
        : cmd === "copy-image"
          ? ["copy-image", "devel", "stable", "mako"]
          : cmd === "tag-image"
            ? ["tag-image", "stable", "mako", String(latest(config, "stable")), `t${i}`]
            : ["generate-keyrings", "--force"];
    if (cmd === "copy-image") {
      bump();
      await must(["import-images"]); // something new to copy
    }
    const before = publishedImages(config.publish_path);
    const at = Math.floor(rand() * span[cmd] * 1.1);
    const r = await si(args, at);
    result.attempted[cmd] = (result.attempted[cmd] ?? 0) + 1;
    const killed = r.signal === "SIGKILL";
    if (killed) {
      result.kills++;
      result.byCommand[cmd] = (result.byCommand[cmd] ?? 0) + 1;
    }
    const tag = `#${i} ${cmd} killed at ${at} ms${r.signal ? "" : ` (had already exited ${r.status})`}`;
    const problems = [...(await treeProblems(config, false)), ...(await checkKeyrings(config))];
    if (problems.length) result.failures.push(`${tag}: after the kill:\n  ${problems.join("\n  ")}`);
    else if (killed) result.consistent++;
    // The next run completes and leaves a clean tree.
    const again = await si(cmd === "tag-image" ? ["tag-image", "stable", "mako", String(latest(config, "stable")), `r${i}`] : args);
    // A copy that was committed before the kill (or had finished) is complete: copying it
    // again is refused with the reference's message, which is the right answer.
    const alreadyCopied = cmd === "copy-image" && again.status === 2 && /already latest full in destination/.test(again.out);
    if (again.status !== 0 && !alreadyCopied) result.failures.push(`${tag}: the next run failed (${again.status}):\n${again.out}`);
    if (cmd !== "import-images") await si(["import-images"]); // its cleanup is what removes orphans
    const after = [...(await treeProblems(config, true)), ...(await checkKeyrings(config))];
    const temps = leftovers(config.publish_path);
    if (after.length || temps.length)
      result.failures.push(`${tag}: after the next run:\n  ${[...after, ...temps.map((t) => `leftover ${t}`)].join("\n  ")}`);
    const now = publishedImages(config.publish_path);
    const lost = [...before].filter((img) => !now.has(img));
    result.lostImages += lost.length;
    if (lost.length) result.failures.push(`${tag}: lost ${lost.join(", ")}`);
    log(`I: ${tag}: ${problems.length ? "INCONSISTENT" : "consistent"}`);
  }
  await farm.close();
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  else log(`I: kept ${work}`);
  result.summary = `${result.kills} kills, ${result.consistent} consistent trees, ${result.lostImages} lost images`;
  return result;
}

/** The latest full version of <channel>/mako. */
function latest(config: Config, channel: string): number {
  const p = join(config.publish_path, channel, "mako/index.json");
  if (!existsSync(p)) return 0;
  const idx = JSON.parse(readFileSync(p, "utf8")) as { images: Array<{ type: string; version: number }> };
  return Math.max(0, ...idx.images.map((i) => i.version));
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const argv = process.argv.slice(2);
  const opt = (name: string, dflt: string) => {
    const i = argv.indexOf(name);
    return i === -1 ? dflt : argv[i + 1];
  };
  const res = await runCrashCampaign({
    kills: Number(opt("--kills", "60")),
    seed: Number(opt("--seed", String(Date.now() % 100000))),
    files: Number(opt("--files", "3000")),
    keep: argv.includes("--keep"),
    log: (l) => console.error(l),
  });
  for (const f of res.failures) console.log(`E: ${f}`);
  console.log(`I: by command: ${JSON.stringify(res.byCommand)}`);
  console.log(res.summary);
  process.exitCode = res.failures.length ? 1 : 0;
}
