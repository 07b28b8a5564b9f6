/**
 * Pushing (src/mirror/push.ts) with the real rclone engine to plain local directories: phase
 * order as seen on the target, only changed files on the next push, a failed push leaving the
 * manifest, removals deferred past their grace, the purge command, the time limit, metrics.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { MirrorConfig, RcloneMirrorConfig } from "../../src/config/types.js";
import { createLogger } from "../../src/io/log.js";
import { acquireMirrorLock } from "../../src/mirror/lock.js";
import { mirrorMetricLines } from "../../src/mirror/metrics.js";
import { pushMirrors, transportFor, type PushMirrorConfig } from "../../src/mirror/push.js";
import { MirrorStore } from "../../src/mirror/store.js";
import type { Transport } from "../../src/mirror/transport.js";
import { RETAIN_MS } from "../../src/tree/versioned-index.js";
import { tmp } from "../importer/fixtures.js";

const T0 = Date.parse("2026-12-01T00:00:00Z");

/** Writes `rel` under root with an mtime of `at` (s since T0), so the listing sees a change. */
function put(root: string, rel: string, body: string, at: number): void {
  mkdirSync(join(root, rel, ".."), { recursive: true });
  writeFileSync(join(root, rel), body);
  utimesSync(join(root, rel), (T0 + at * 1000) / 1000, (T0 + at * 1000) / 1000);
}

/** A tree with a file in every phase (contents are stand-ins: the engine does not read them). */
function makeTree(): string {
  const root = tmp("si-push-tree-");
  put(root, "pool/ubports-aa.tar.xz", "rootfs v1".repeat(100), 1);
  put(root, "pool/ubports-aa.tar.xz.asc", "sig aa", 1);
  put(root, "devel/mako/version-1.tar.xz", "version 1", 1);
  put(root, "devel/mako/index-00000000000000a1.json", "index copy 1", 2);
  put(root, "devel/mako/index-00000000000000a1.json.asc", "sig index copy 1", 2);
  put(root, "devel/mako/index.json", "index 1", 3);
  put(root, "devel/mako/index.json.asc", "sig index 1", 3);
  put(root, "gpg/image-signing.tar.xz", "keyring 1", 4);
  put(root, "gpg/image-signing.tar.xz.asc", "sig keyring 1", 4);
  put(root, "channels.json", JSON.stringify({ devel: { devices: { mako: { index: "/devel/mako/index-00000000000000a1.json" } } } }), 5);
  put(root, "channels.json.asc", "sig channels 1", 5);
  put(root, ".channels.json.new-1-abcd", "a commit's temporary: never pushed", 5);
  return root;
}

/** v2: a new pool file, a new index copy, new documents. */
function publishV2(root: string): void {
  put(root, "pool/ubports-bb.tar.xz", "rootfs v2".repeat(50), 10);
  put(root, "devel/mako/index-00000000000000b2.json", "index copy 2", 11);
  put(root, "devel/mako/index-00000000000000b2.json.asc", "sig index copy 2", 11);
  put(root, "devel/mako/index.json", "index 2", 12);
  put(root, "devel/mako/index.json.asc", "sig index 2", 12);
  put(root, "channels.json", JSON.stringify({ devel: { devices: { mako: { index: "/devel/mako/index-00000000000000b2.json" } } } }), 13);
  put(root, "channels.json.asc", "sig channels 2", 13);
}

function conf(root: string, mirrors: MirrorConfig[], over: { mirror_timeout?: number; mirror_verify?: boolean } = {}) {
  return {
    publish_path: root,
    state_path: tmp("si-push-state-"),
    mirrors: Object.fromEntries(mirrors.map((m) => [m.name, m])),
    mirror_timeout: over.mirror_timeout ?? 120,
    mirror_connect_timeout: 5,
    mirror_verify: over.mirror_verify ?? false,
  };
}

const rcloneDir = (name: string, over: Partial<RcloneMirrorConfig> = {}): RcloneMirrorConfig & { dir: string } => {
  const dir = join(tmp(`si-push-${name}-`), "mirror");
  return { name, type: "rclone", remote: dir, dir, ...over };
};

/** sha256 of every file under dir (relative path → hash). */
function contents(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(d, e.name), p);
      else
        out[p] = createHash("sha256")
          .update(readFileSync(join(d, e.name)))
          .digest("hex")
          .slice(0, 12);
    }
  };
  walk(dir, "");
  return out;
}

function jsonLog() {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger({ json: true, level: "info", write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }), lines };
}

describe("pushMirrors", () => {
  it("pushes in phase order: after each phase the target has that phase's files and none of the next", async () => {
    const root = makeTree();
    const m = rcloneDir("a");
    const c = conf(root, [m]);
    await pushMirrors(c, { trigger: "cli" });
    publishV2(root);
    // The real engine, and a look at the target after each of its runs.
    const seen: { phase: string; target: Record<string, string> }[] = [];
    const transport = (mc: PushMirrorConfig): Transport => {
      const real = transportFor(mc, c);
      return {
        async pushPhase(files, from, signal) {
          const r = await real.pushPhase(files, from, signal);
          seen.push({ phase: files.join(","), target: contents(m.dir) });
          return r;
        },
        remove: (files, signal) => real.remove(files, signal),
      };
    };
    const { log, lines } = jsonLog();
    const [r] = await pushMirrors(c, { trigger: "cli", transport, log });
    expect(r.outcome, r.error).toBe("ok");
    expect(r.phases.map((p) => p.phase)).toEqual(["files", "index-copies", "indexes", "channels"]);
    const local = contents(root);
    const has = (i: number, p: string) => seen[i].target[p] === local[p];
    // 1 files: the new pool file is there; nothing names it yet.
    expect(has(0, "pool/ubports-bb.tar.xz")).toBe(true);
    expect(has(0, "devel/mako/index-00000000000000b2.json") || has(0, "devel/mako/index.json") || has(0, "channels.json")).toBe(false);
    // 2 index copies (with their signatures), documents still old.
    expect(has(1, "devel/mako/index-00000000000000b2.json") && has(1, "devel/mako/index-00000000000000b2.json.asc")).toBe(true);
    expect(has(1, "devel/mako/index.json") || has(1, "channels.json")).toBe(false);
    // 3 index.json pair; channels.json still the old one.
    expect(has(2, "devel/mako/index.json") && has(2, "devel/mako/index.json.asc")).toBe(true);
    expect(has(2, "channels.json") || has(2, "channels.json.asc")).toBe(false);
    // 5 channels.json pair last: the mirror is the local tree (temporaries left out).
    const { [".channels.json.new-1-abcd"]: _temp, ...published } = local;
    expect(seen[3].target).toEqual(published);
    // One log line per phase with bytes and duration, then one for the mirror.
    const phaseLines = lines.filter((l) => l.phase);
    expect(phaseLines.map((l) => [l.mirror, l.phase, l.files])).toEqual([
      ["a", "files", 1],
      ["a", "index-copies", 2],
      ["a", "indexes", 2],
      ["a", "channels", 2],
    ]);
    for (const l of phaseLines) {
      expect(typeof l.bytes).toBe("number");
      expect(typeof l.duration_ms).toBe("number");
    }
    expect(lines.at(-1)).toMatchObject({ level: "info", mirror: "a", outcome: "ok", files: 7 });
  });

  it("sends only what changed since the last successful push: a second push with nothing new sends nothing", async () => {
    const root = makeTree();
    const m = rcloneDir("a");
    const c = conf(root, [m]);
    const [first] = await pushMirrors(c, { trigger: "cli" });
    expect(first.files).toBe(11);
    const sizeOf = (p: string) => statSync(join(root, p)).size;
    publishV2(root);
    const [second] = await pushMirrors(c, { trigger: "import" });
    const changed = [
      "pool/ubports-bb.tar.xz",
      "devel/mako/index-00000000000000b2.json",
      "devel/mako/index-00000000000000b2.json.asc",
      "devel/mako/index.json",
      "devel/mako/index.json.asc",
      "channels.json",
      "channels.json.asc",
    ];
    expect(second.files).toBe(changed.length);
    expect(second.bytes).toBe(changed.reduce((n, p) => n + sizeOf(p), 0));
    const [third] = await pushMirrors(c, { trigger: "schedule" });
    expect([third.outcome, third.files, third.bytes, third.phases]).toEqual(["ok", 0, 0, []]);
    const store = MirrorStore.open(c.state_path);
    expect(store.pushes("a").map((p) => [p.trigger, p.outcome, p.files])).toEqual([
      ["schedule", "ok", 0],
      ["import", "ok", 7],
      ["cli", "ok", 11],
    ]);
    store.close();
  });

  it("a failed push leaves the manifest: the next push sends again everything the failed one had", async () => {
    const root = makeTree();
    const m = rcloneDir("a");
    const c = conf(root, [m]);
    await pushMirrors(c, { trigger: "cli" });
    const store = MirrorStore.open(c.state_path);
    const before = store.manifest("a");
    publishV2(root);
    // The engine fails at the indexes phase (its error is what the result says).
    const failing = (mc: PushMirrorConfig): Transport => {
      const real = transportFor(mc, c);
      return {
        pushPhase: (files, from, signal) =>
          files.includes("devel/mako/index.json")
            ? Promise.reject(new Error("rclone exited with status 1: disk full"))
            : real.pushPhase(files, from, signal),
        remove: real.remove,
      };
    };
    const { log, lines } = jsonLog();
    const [failed] = await pushMirrors(c, { trigger: "cli", transport: failing, log });
    expect([failed.outcome, failed.error]).toEqual(["failed", "rclone exited with status 1: disk full"]);
    expect(lines.at(-1)).toMatchObject({ level: "warn", mirror: "a", outcome: "failed" });
    expect(store.manifest("a").sort((x, y) => (x.path < y.path ? -1 : 1))).toEqual(before.sort((x, y) => (x.path < y.path ? -1 : 1)));
    const onMirror = JSON.parse(readFileSync(join(m.dir, "channels.json"), "utf8")) as { devel: { devices: { mako: { index: string } } } };
    expect(onMirror.devel.devices.mako.index).toBe("/devel/mako/index-00000000000000a1.json");
    const [retry] = await pushMirrors(c, { trigger: "cli" });
    expect(retry.outcome).toBe("ok");
    expect(retry.phases.map((p) => [p.phase, p.files])).toEqual([
      ["files", 1],
      ["index-copies", 2],
      ["indexes", 2],
      ["channels", 2],
    ]);
    expect(store.pushes("a").map((p) => p.outcome)).toEqual(["ok", "failed", "ok"]);
    store.close();
  });

  it("removes a file gone locally only on a push after the versioned_index retention", async () => {
    const root = makeTree();
    const m = rcloneDir("a");
    const c = conf(root, [m]);
    let now = T0 + 3600_000;
    const clock = () => new Date(now);
    await pushMirrors(c, { trigger: "cli", now: clock });
    rmSync(join(root, "pool/ubports-aa.tar.xz"));
    rmSync(join(root, "pool/ubports-aa.tar.xz.asc"));
    const [noticed] = await pushMirrors(c, { trigger: "cli", now: clock });
    expect([noticed.removed, noticed.pendingRemovals]).toEqual([0, 2]);
    expect(existsSync(join(m.dir, "pool/ubports-aa.tar.xz"))).toBe(true);
    now += RETAIN_MS - 1000;
    const [early] = await pushMirrors(c, { trigger: "cli", now: clock });
    expect([early.removed, early.pendingRemovals]).toEqual([0, 2]);
    expect(existsSync(join(m.dir, "pool/ubports-aa.tar.xz"))).toBe(true);
    now += 2000;
    const [due] = await pushMirrors(c, { trigger: "cli", now: clock });
    expect([due.outcome, due.removed, due.pendingRemovals]).toEqual(["ok", 2, 0]);
    expect(due.phases.map((p) => [p.phase, p.files, p.bytes])).toEqual([["removals", 2, 0]]);
    expect(existsSync(join(m.dir, "pool/ubports-aa.tar.xz"))).toBe(false);
    expect(existsSync(join(m.dir, "pool/ubports-aa.tar.xz.asc"))).toBe(false);
    expect(existsSync(join(m.dir, "channels.json"))).toBe(true);
    const store = MirrorStore.open(c.state_path);
    expect(store.manifest("a").map((e) => e.path)).not.toContain("pool/ubports-aa.tar.xz");
    store.close();
  });

  it("runs purge_command after the last phase with the URLs of the changed mutable documents only", async () => {
    const root = makeTree();
    const dir = tmp("si-push-purge-");
    const script = join(dir, "purge.sh");
    writeFileSync(script, `#!/bin/sh\nfor a in "$@"; do echo "$a" >> '${dir}/args'; done\nexit 1\n`);
    chmodSync(script, 0o755);
    const m = rcloneDir("a", { url: "https://cdn.example.net/ota/", purge_command: [script, "--purge"] });
    const c = conf(root, [m]);
    await pushMirrors(c, { trigger: "cli" });
    rmSync(join(dir, "args"));
    publishV2(root);
    const { log, lines } = jsonLog();
    const [r] = await pushMirrors(c, { trigger: "cli", log });
    const args = readFileSync(join(dir, "args"), "utf8").trim().split("\n");
    expect(args).toEqual([
      "--purge",
      "https://cdn.example.net/ota/devel/mako/index.json",
      "https://cdn.example.net/ota/devel/mako/index.json.asc",
      "https://cdn.example.net/ota/channels.json",
      "https://cdn.example.net/ota/channels.json.asc",
    ]);
    // The script exits 1: logged, not fatal.
    expect(r.outcome).toBe("ok");
    expect(lines.find((l) => l.phase === "purge")).toMatchObject({ level: "warn", mirror: "a" });
  });

  it("stops a push that outlives mirror_timeout, kills the engine, and keeps the other mirror going", async () => {
    const root = makeTree();
    // A WebDAV "server" that accepts connections and never answers.
    const sockets: import("node:net").Socket[] = [];
    const hole = createServer((s) => sockets.push(s));
    await new Promise<void>((ok) => hole.listen(0, "127.0.0.1", ok));
    const port = (hole.address() as { port: number }).port;
    const confDir = tmp("si-push-hole-");
    const rcloneConf = join(confDir, "rclone.conf");
    writeFileSync(rcloneConf, `[hole]\ntype = webdav\nurl = http://127.0.0.1:${port}/\nvendor = other\n`);
    const hung: RcloneMirrorConfig = { name: "hung", type: "rclone", remote: "hole:x", rclone_config: rcloneConf };
    const ok = rcloneDir("ok");
    const c = conf(root, [hung, ok], { mirror_timeout: 2 });
    // The other mirror's engine answers at once (its own speed is not what is tested here).
    const quick: Transport = { pushPhase: async () => ({ bytes: 1 }), remove: async () => ({ bytes: 0 }) };
    try {
      const results = await pushMirrors(c, { trigger: "cli", transport: (mc) => (mc.name === "ok" ? quick : transportFor(mc, c)) });
      expect(results.map((r) => [r.name, r.outcome, r.error])).toEqual([
        ["hung", "timeout", "stopped after 2 s (mirror_timeout)"],
        ["ok", "ok", undefined],
      ]);
      // No rclone of the hung mirror is left running.
      const left = readdirSync("/proc").filter((pid) => {
        try {
          return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(rcloneConf);
        } catch {
          return false; // ended meanwhile
        }
      });
      expect(left).toEqual([]);
      const store = MirrorStore.open(c.state_path);
      expect(store.manifest("hung")).toEqual([]);
      expect(store.pushes("hung")[0]).toMatchObject({ outcome: "timeout", error: "stopped after 2 s (mirror_timeout)" });
      store.close();
    } finally {
      for (const s of sockets) s.destroy();
      hole.close();
    }
  });

  it("one push per mirror at a time: a push that cannot get the mirror's lock in time gives up, recorded", async () => {
    const root = makeTree();
    const m = rcloneDir("a");
    const c = conf(root, [m], { mirror_timeout: 1 });
    const held = await acquireMirrorLock(c.state_path, "a", 0);
    expect(held).not.toBeNull();
    try {
      const [r] = await pushMirrors(c, { trigger: "cli" });
      expect([r.outcome, r.error]).toEqual(["timeout", "another push to mirror a was still running after 1 s"]);
      expect(existsSync(join(m.dir, "channels.json"))).toBe(false);
    } finally {
      held!.release();
    }
    const [after] = await pushMirrors({ ...c, mirror_timeout: 120 }, { trigger: "cli" });
    expect(after.outcome).toBe("ok");
    const store = MirrorStore.open(c.state_path);
    expect(store.pushes("a").map((p) => p.outcome)).toEqual(["ok", "timeout"]);
    store.close();
  });

  it("mirror_verify: problems the remote check finds fail the push (after the manifest moved)", async () => {
    const root = makeTree();
    const m = rcloneDir("a", { url: "http://127.0.0.1:1/" });
    const c = conf(root, [m], { mirror_verify: true });
    const asked: string[] = [];
    const verify = async (o: { url: string }) => {
      asked.push(o.url);
      return { ok: false, problems: [`${o.url}channels.json: BAD signature`] };
    };
    const [r] = await pushMirrors(c, { trigger: "cli", verify });
    expect(asked).toEqual(["http://127.0.0.1:1/"]);
    expect([r.outcome, r.error]).toEqual([
      "failed",
      "verification of http://127.0.0.1:1/ failed: 1 problem(s), first: http://127.0.0.1:1/channels.json: BAD signature",
    ]);
    expect(r.verifyProblems).toHaveLength(1);
  });

  it("metrics: complete families, lag 0 while the mirror has the local channels.json", async () => {
    const root = makeTree();
    const a = rcloneDir("a");
    const b: RcloneMirrorConfig = { name: "b", type: "rclone", remote: "/proc/no-such-dir/x" };
    const c = conf(root, [a, b]);
    const results = await pushMirrors(c, { trigger: "cli" });
    expect(results.map((r) => r.outcome)).toEqual(["ok", "failed"]);
    const now = Date.now();
    const lines = mirrorMetricLines(c.state_path, c, now);
    const value = (name: string, mirror: string) => Number(lines.find((l) => l.startsWith(`${name}{mirror="${mirror}"} `))?.split(" ")[1]);
    expect(value("si_mirror_last_push_success", "a")).toBe(1);
    expect(value("si_mirror_last_push_success", "b")).toBe(0);
    expect(value("si_mirror_last_success_timestamp_seconds", "b")).toBe(0);
    expect(value("si_mirror_last_success_timestamp_seconds", "a")).toBeGreaterThan(now / 1000 - 600);
    expect(value("si_mirror_push_bytes_total", "a")).toBe(results[0].bytes);
    expect(value("si_mirror_lag_seconds", "a")).toBe(0);
    // b never received a channels.json: behind since the local one was written (T0 + 5 s).
    expect(value("si_mirror_lag_seconds", "b")).toBe(Math.round((now - (T0 + 5000)) / 1000));
    // A new local channels.json: a is behind since the one it has was written.
    put(root, "channels.json", "{}", 20);
    expect(
      Number(
        mirrorMetricLines(c.state_path, c, now)
          .find((l) => l.startsWith('si_mirror_lag_seconds{mirror="a"}'))
          ?.split(" ")[1],
      ),
    ).toBe(Math.round((now - (T0 + 5000)) / 1000));
    const check = spawnSync("promtool", ["check", "metrics"], { input: lines.join("\n") + "\n", encoding: "utf8" });
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });
});
