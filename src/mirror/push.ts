/**
 * Pushing the tree to the rsync and rclone mirrors (issue 16): every mirror at once, each
 * bounded by mirror_timeout, in the order of plan.ts, from a snapshot (snapshot.ts), one push
 * at a time per mirror (lock.ts). Like syncMirrors, a mirror failing never fails the caller:
 * the tree is published; outcomes are returned, logged (one line per mirror and phase) and
 * recorded (mirror_pushes). The manifest moves only once phase 5 is in place, so a failed
 * push leaves the old one and the next push sends again what this one may have missed.
 *
 * After phase 5: the mirror's purge_command with the URLs of the changed mutable documents,
 * the removals that are due, then (mirror_verify) a check of the mirror as devices see it.
 */
import { randomBytes } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_MIRROR_CONNECT_TIMEOUT, DEFAULT_MIRROR_TIMEOUT, MirrorFailure } from "../config/mirrors.js";
import type { Config, MirrorConfig, RcloneMirrorConfig, RsyncMirrorConfig } from "../config/types.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../io/log.js";
import { RETAIN_MS } from "../tree/versioned-index.js";
import { verifyRemoteTree } from "../verify/remote.js";
import { acquireMirrorLock } from "./lock.js";
import { isMutableDocument, planFiles, planPush, type LocalFile } from "./plan.js";
import { purgeUrls, runPurge } from "./purge.js";
import { rcloneTransport } from "./rclone.js";
import { rsyncTransport } from "./rsync.js";
import { takeSnapshot } from "./snapshot.js";
import { MirrorStore, type PhaseRecord, type PushTrigger } from "./store.js";
import type { Transport } from "./transport.js";

export type PushMirrorConfig = RsyncMirrorConfig | RcloneMirrorConfig;

export interface MirrorPushResult {
  name: string;
  type: PushMirrorConfig["type"];
  outcome: "ok" | "failed" | "timeout";
  durationMs: number;
  /** Files sent by the phases, and bytes of all transport runs (as the engine counts them). */
  files: number;
  bytes: number;
  phases: PhaseRecord[];
  /** Removed from the mirror by this push; still waiting for their grace. */
  removed: number;
  pendingRemovals: number;
  /** URLs given to purge_command. */
  purged: string[];
  /** mirror_verify: problems found on the mirror (empty: verified or not checked). */
  verifyProblems: string[];
  error?: string;
}

/** The remote check (src/verify/remote.ts); tests replace it. */
export type VerifyRemote = (opts: { url: string; config: Config; signal?: AbortSignal }) => Promise<{ ok: boolean; problems: string[] }>;

export interface PushOptions {
  log?: Logger;
  trigger: PushTrigger;
  /** Only these mirrors (default: every rsync and rclone mirror). */
  names?: string[];
  signal?: AbortSignal;
  now?: () => Date;
  /** Replaces the engines (tests). */
  transport?: (m: PushMirrorConfig) => Transport;
  verify?: VerifyRemote;
}

type PushConf = Pick<Config, "mirrors" | "publish_path" | "state_path" | "mirror_timeout" | "mirror_connect_timeout" | "mirror_verify">;

export function pushMirrorsOf(config: Pick<Config, "mirrors">, names?: string[]): PushMirrorConfig[] {
  return Object.values(config.mirrors)
    .filter((m: MirrorConfig): m is PushMirrorConfig => m.type === "rsync" || m.type === "rclone")
    .filter((m) => !names || names.includes(m.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function transportFor(m: PushMirrorConfig, config: PushConf): Transport {
  const connectTimeout = config.mirror_connect_timeout ?? DEFAULT_MIRROR_CONNECT_TIMEOUT;
  return m.type === "rsync" ? rsyncTransport(m, { connectTimeout, liveRoot: config.publish_path }) : rcloneTransport(m, { connectTimeout });
}

const seconds = (ms: number) => (ms / 1000).toFixed(1).replace(/\.0$/, "");
const size = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);

/** A push that has sent nothing yet (outcome ok until something fails). */
function emptyResult(m: PushMirrorConfig): MirrorPushResult {
  return {
    name: m.name,
    type: m.type,
    outcome: "ok",
    durationMs: 0,
    files: 0,
    bytes: 0,
    phases: [],
    removed: 0,
    pendingRemovals: 0,
    purged: [],
    verifyProblems: [],
  };
}

/**
 * Pushes every (or the named) rsync/rclone mirror at once and waits for all; never throws for
 * a mirror's failure. Call it with the global lock released.
 */
export async function pushMirrors(config: PushConf, opts: PushOptions): Promise<MirrorPushResult[]> {
  return Promise.all(
    pushMirrorsOf(config, opts.names).map((m) =>
      // Only the state database failing gets here (every step of a push is caught inside).
      pushOne(config, m, opts).catch((err: unknown): MirrorPushResult => {
        const error = `Cannot push to mirror ${m.name}: ${errorMessage(err)}`;
        opts.log?.error(error, { mirror: m.name, outcome: "failed" });
        return { ...emptyResult(m), outcome: "failed", error };
      }),
    ),
  );
}

/** True when some push mirror has a removal whose grace has ended (a push would remove it). */
export function removalsDue(config: Pick<Config, "mirrors" | "state_path">, now = Date.now()): boolean {
  const names = pushMirrorsOf(config).map((m) => m.name);
  if (names.length === 0) return false;
  const store = MirrorStore.open(config.state_path);
  try {
    return names.some((n) => store.dueRemovals(n, now) > 0);
  } finally {
    store.close();
  }
}

/** Snapshot directories of this mirror left by a killed push (the caller holds the mirror's lock). */
async function removeStaleSnapshots(dir: string, mirror: string): Promise<void> {
  const prefix = `${encodeURIComponent(mirror)}-`;
  for (const n of await readdir(dir).catch(() => [] as string[]))
    if (n.startsWith(prefix)) await rm(join(dir, n), { recursive: true, force: true });
}

async function pushOne(config: PushConf, m: PushMirrorConfig, opts: PushOptions): Promise<MirrorPushResult> {
  const now = opts.now ?? (() => new Date());
  const log = opts.log;
  const started = performance.now();
  const timeoutMs = (config.mirror_timeout ?? DEFAULT_MIRROR_TIMEOUT) * 1000;
  const result = emptyResult(m);
  const fail = (err: unknown) => {
    result.outcome = err instanceof MirrorFailure ? err.outcome : "failed";
    result.error = errorMessage(err).replace(/\s+/g, " ").trim();
  };
  const finish = () => {
    result.durationMs = Math.round(performance.now() - started);
    const fields = { mirror: m.name, outcome: result.outcome, files: result.files, bytes: result.bytes, duration_ms: result.durationMs };
    const pending = result.pendingRemovals ? `; ${result.pendingRemovals} removal(s) waiting for their grace` : "";
    if (result.outcome === "ok")
      log?.info(
        `mirror ${m.name} (${m.type}) pushed in ${seconds(result.durationMs)} s: ${result.files} files, ${size(result.bytes)}${pending}`,
        fields,
      );
    else log?.warn(`mirror ${m.name} (${m.type}) push failed after ${seconds(result.durationMs)} s: ${result.error}`, fields);
    return result;
  };

  // One push per mirror: wait (without blocking the other mirrors) for one still running.
  const lock = await acquireMirrorLock(config.state_path, m.name, timeoutMs, opts.signal).catch((err: unknown) => (fail(err), null));
  if (!lock) {
    if (!result.error)
      fail(new MirrorFailure(`another push to mirror ${m.name} was still running after ${seconds(timeoutMs)} s`, "timeout"));
    // Recorded too, so status and /metrics show a mirror whose pushes keep colliding.
    const store = MirrorStore.open(config.state_path);
    try {
      const id = store.insertPush(m.name, opts.trigger, now());
      store.finishPush(id, { outcome: result.outcome, finishedAt: now(), channelsSha256: null, error: result.error });
    } finally {
      store.close();
    }
    return finish();
  }
  const abort = new AbortController();
  const timer = setTimeout(
    () => abort.abort(new MirrorFailure(`stopped after ${seconds(timeoutMs)} s (mirror_timeout)`, "timeout")),
    timeoutMs,
  );
  const onCallerAbort = () => abort.abort(new MirrorFailure("interrupted", "failed"));
  opts.signal?.addEventListener("abort", onCallerAbort, { once: true });
  const store = MirrorStore.open(config.state_path);
  const id = store.startPush(m.name, opts.trigger, now());
  const transport = opts.transport?.(m) ?? transportFor(m, config);
  const workDir = join(config.state_path, "mirror-push");
  let channelsSha256: string | null = null;
  let snapshot: Awaited<ReturnType<typeof takeSnapshot>> | undefined;
  try {
    await removeStaleSnapshots(workDir, m.name);
    snapshot = await takeSnapshot(
      config.publish_path,
      join(workDir, `${encodeURIComponent(m.name)}-${process.pid}-${randomBytes(4).toString("hex")}`),
      // rclone has no symlinks to switch (object stores have no rename either): plain pair only.
      { pairDir: m.type === "rsync" },
    );
    channelsSha256 = snapshot.channelsSha256;
    const plan = planPush(snapshot.files, store.manifest(m.name), now().getTime());
    for (const phase of plan.phases) {
      if (phase.files.length === 0) continue;
      const t0 = performance.now();
      const { bytes } = await transport.pushPhase(phase.files, snapshot.rootOf(phase.name), abort.signal, {
        links: phase.name === "channels-switch",
      });
      const rec: PhaseRecord = { phase: phase.name, files: phase.files.length, bytes, duration_ms: Math.round(performance.now() - t0) };
      result.phases.push(rec);
      result.files += rec.files;
      result.bytes += bytes;
      store.progress(id, result.files, result.bytes, result.phases);
      log?.info(`mirror ${m.name}: ${phase.name} sent, ${rec.files} files, ${size(bytes)} in ${seconds(rec.duration_ms)} s`, {
        mirror: m.name,
        ...rec,
      });
    }
    // Phase 5 is in place: this is the mirror's manifest now.
    const pushedAt = now();
    const byPath = new Map<string, LocalFile>(snapshot.files.map((f) => [f.path, f]));
    store.commitManifest(m.name, {
      sent: planFiles(plan).map((p) => byPath.get(p)!),
      newlyGone: plan.newlyGone,
      returned: plan.returned,
      removableAfter: new Date(pushedAt.getTime() + RETAIN_MS),
      pushedAt,
    });
    result.pendingRemovals = plan.pendingRemovals.length + plan.newlyGone.length;
    const changedDocs = planFiles(plan).filter(isMutableDocument);
    if (m.purge_command && changedDocs.length > 0) {
      result.purged = purgeUrls(m, changedDocs);
      await runPurge(m, result.purged, { timeoutMs, signal: abort.signal, log });
    }
    if (plan.dueRemovals.length > 0) {
      const t0 = performance.now();
      try {
        const { bytes } = await transport.remove(plan.dueRemovals, abort.signal);
        store.dropFiles(m.name, plan.dueRemovals);
        result.removed = plan.dueRemovals.length;
        const rec: PhaseRecord = { phase: "removals", files: result.removed, bytes, duration_ms: Math.round(performance.now() - t0) };
        result.phases.push(rec);
        result.bytes += bytes;
        store.progress(id, result.files, result.bytes, result.phases);
        log?.info(`mirror ${m.name}: removals done, ${rec.files} files in ${seconds(rec.duration_ms)} s`, { mirror: m.name, ...rec });
      } catch (err) {
        // The documents are in place; the removals stay due for the next push.
        result.pendingRemovals += plan.dueRemovals.length;
        throw new MirrorFailure(`removals failed: ${errorMessage(err)}`, err instanceof MirrorFailure ? err.outcome : "failed");
      }
    }
    if (config.mirror_verify && m.url) {
      // The callers (import-images, admin commands, si mirror) pass the whole Config.
      const report = await (opts.verify ?? verifyRemoteTree)({ url: m.url, config: config as Config, signal: abort.signal });
      if (!report.ok) {
        result.verifyProblems = report.problems;
        throw new MirrorFailure(
          `verification of ${m.url} failed: ${report.problems.length} problem(s), first: ${report.problems[0] ?? "?"}`,
        );
      }
    }
  } catch (err) {
    // After a timeout, say so (the engine's own error is just the kill).
    fail(abort.signal.aborted ? abort.signal.reason : err);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onCallerAbort);
    store.finishPush(id, { outcome: result.outcome, finishedAt: now(), channelsSha256, error: result.error });
    store.close();
    await snapshot?.close();
    lock.release();
  }
  return finish();
}
