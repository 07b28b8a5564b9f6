/**
 * `import-images` (server-reference §5.6): under the global lock, every automatic channel in
 * config order, every device of it; then alias sync per channel and orphan cleanup. Each run
 * and each device is recorded in the import history.
 *
 * Mirror triggers (issue 15 item 4) and pushes (issue 16) run after the lock is released, and
 * only when the run changed what devices read (channels.json or a device's index): a run that
 * published nothing triggers nothing, and a slow mirror never keeps the next import or an
 * admin command waiting for the lock. (Pushes also go when a mirror's removals became due.)
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/types.js";
import { syncMirrors, type MirrorResult, type MirrorRunner } from "../config/mirrors.js";
import { errorMessage } from "../errors.js";
import { pushMirrors, removalsDue, type MirrorPushResult } from "../mirror/push.js";
import { makeGeneratorContext, type GeneratorContext } from "../generators/index.js";
import { removeStalePoolTemps } from "../generators/pool.js";
import { HostMemory, type FetchOptions } from "../io/fetch.js";
import { acquireGlobalLock } from "../io/lock.js";
import type { Logger } from "../io/log.js";
import { compareCodePoints } from "../format/pyjson.js";
import { isPerDeviceRedirect } from "../model/channels.js";
import type { Signer } from "../pgp/signer.js";
import { ImportHistory, type DeviceRecord } from "../state/history.js";
import { Tree } from "../tree/index.js";
import { importDevice, planDevice, type DevicePlan } from "./import-device.js";

export interface ImportOptions {
  log: Logger;
  dryRun?: boolean;
  /** "cli" or "schedule", recorded in the history. */
  trigger?: string;
  signer?: Signer;
  fetchOptions?: FetchOptions;
  clock?: () => Date;
  /** Mirror trigger runner (tests inject one). */
  runMirror?: MirrorRunner;
  /** Called once the run is recorded in the history (not for a dry run). */
  onRunStarted?: (runId: number) => void;
}

export interface ImportResult {
  runId?: number;
  plans: DevicePlan[];
  devices: DeviceRecord[];
  failed: number;
  published: number;
  /** Mirror outcomes, when the run changed the tree and mirrors are configured. */
  mirrors?: MirrorResult[];
  /** Push mirror (rsync, rclone) outcomes, when the run changed the tree or removals were due. */
  pushes?: MirrorPushResult[];
}

/**
 * What devices read: channels.json and the index each device entry names. Equal before and
 * after a run = nothing for mirrors to fetch (pool files are only reachable through these).
 */
async function treeFingerprint(publishPath: string): Promise<string> {
  const hash = createHash("sha256");
  const read = (rel: string) => readFile(join(publishPath, rel)).catch(() => Buffer.from("\0missing"));
  const channels = await read("channels.json");
  hash.update(channels);
  let doc: Record<string, { devices?: Record<string, { index?: unknown }> }> = {};
  try {
    doc = JSON.parse(channels.toString("utf8")) as typeof doc;
  } catch {
    // A missing or unreadable channels.json: its bytes are the fingerprint.
  }
  const indexes = new Set<string>();
  for (const ch of Object.values(doc ?? {})) {
    for (const dev of Object.values(ch?.devices ?? {})) if (typeof dev?.index === "string") indexes.add(dev.index);
  }
  for (const index of [...indexes].sort()) hash.update(`\0${index}\0`).update(await read(index));
  return hash.digest("hex");
}

export async function importImages(config: Config, opts: ImportOptions): Promise<ImportResult> {
  const result: ImportResult = { plans: [], devices: [], failed: 0, published: 0 };
  // A dry run reads only: it neither waits for nor takes the lock.
  if (opts.dryRun) return runChannels(config, opts, result, undefined, undefined);
  const lock = acquireGlobalLock(config.state_path, {
    holder: opts.trigger === "schedule" ? "import-images (scheduled)" : "import-images",
  });
  let before: string | undefined;
  let failure: { err: unknown } | undefined;
  // Holding the lock, no other import can be running: any run still "running" is interrupted.
  const history = ImportHistory.open(config.state_path, { lockHeld: true });
  try {
    const runId = history.startRun(opts.trigger ?? "cli", false);
    result.runId = runId;
    opts.onRunStarted?.(runId);
    try {
      if (Object.keys(config.mirrors).length > 0) before = await treeFingerprint(config.publish_path);
      await runChannels(config, opts, result, history, runId);
    } catch (err) {
      // A run that dies (tree unreadable, cleanup failing...) is recorded, never left "running".
      history.finishRun(runId, "failed", errorMessage(err));
      failure = { err };
    }
  } finally {
    history.close();
    lock.release();
  }
  // Even a run that failed half-way may have published something the mirrors should fetch.
  if (before !== undefined) {
    const changed = (await treeFingerprint(config.publish_path)) !== before;
    // Push mirrors also go when only removals are due (their grace ended since the last push).
    const push = changed || removalsDue(config);
    const trigger = opts.trigger === "schedule" ? "schedule" : "import";
    const [triggered, pushed] = await Promise.all([
      changed ? syncMirrors(config, { log: opts.log, run: opts.runMirror }) : undefined,
      push ? pushMirrors(config, { log: opts.log, trigger }) : undefined,
    ]);
    if (triggered) result.mirrors = triggered;
    if (pushed) result.pushes = pushed;
    if (!changed) opts.log.debug("the tree did not change: no mirror triggered");
  }
  if (failure) throw failure.err;
  return result;
}

async function runChannels(
  config: Config,
  opts: ImportOptions,
  result: ImportResult,
  history: ImportHistory | undefined,
  runId: number | undefined,
): Promise<ImportResult> {
  const { log } = opts;
  const gctx: GeneratorContext = makeGeneratorContext(config, {
    signer: opts.signer,
    clock: opts.clock,
    fetchOptions: {
      retries: config.http_retries,
      // Connect + first byte is short (a hung build server costs seconds, not minutes);
      // http_timeout is the no-progress limit of a body (issue 15 item 7).
      ...firstByteTimeout(config),
      ...(config.http_timeout ? { readTimeoutMs: config.http_timeout * 1000 } : {}),
      // One memory per run: a build server that refused is not asked again until the next run.
      hosts: new HostMemory(),
      ...opts.fetchOptions,
    },
    // "W: " lines (an unverified upstream, a dangling hard link) are warnings an operator must see.
    log: (line) => (line.startsWith("W: ") ? log.warn(line.slice(3)) : log.debug(line.replace(/^[A-Z]: /, ""))),
  });
  const tree = new Tree(config, { signer: gctx.signer, clock: gctx.clock });
  // Download directories of a killed run (we hold the lock: nobody else owns one).
  if (!opts.dryRun) for (const d of await removeStalePoolTemps(config.publish_path)) log.info(`removed the stale download directory ${d}`);
  const channels = await tree.listChannels();
  let runError: string | undefined;
  for (const conf of config.channels.values()) {
    if (conf.type !== "auto") continue;
    const clog = log.child({ channel: conf.name });
    if (!(conf.name in channels)) {
      clog.error(`Invalid channel name '${conf.name}': it is in the config but not in channels.json`);
      continue;
    }
    const devices = Object.keys(channels[conf.name].devices ?? {}).sort(compareCodePoints);
    for (const device of devices) {
      if (isPerDeviceRedirect(channels[conf.name].devices[device])) continue;
      const dlog = clog.child({ device });
      if (opts.dryRun) {
        const { plan } = await planDevice(tree, channels, conf, device);
        result.plans.push(plan);
        continue;
      }
      const startedAt = gctx.clock();
      let rec: DeviceRecord;
      try {
        const r = await importDevice(tree, channels, conf, device, gctx, dlog);
        rec = {
          channel: conf.name,
          device,
          outcome: r.outcome,
          version: r.outcome === "published" ? r.version : null,
          files: r.files.length,
          bytes: r.bytes,
          steps: r.steps,
          startedAt,
          finishedAt: gctx.clock(),
        };
        if (r.outcome === "published") {
          result.published++;
          dlog.info(
            `published version ${r.version} (${r.files.length} files${r.deltas.length ? `, deltas from ${r.deltas.map((d) => d.base).join(", ")}` : ""})`,
            { version: r.version },
          );
        } else dlog.info("nothing new");
        if (conf.fullcount > 0) await (await tree.getDevice(conf.name, device)).expireImages(conf.fullcount);
      } catch (err) {
        result.failed++;
        const message = errorMessage(err);
        dlog.error(`import failed, nothing published: ${message}`);
        rec = { channel: conf.name, device, outcome: "failed", error: message, startedAt, finishedAt: gctx.clock() };
      }
      result.devices.push(rec);
      if (runId !== undefined) history!.recordDevice(runId, rec);
    }
    if (!opts.dryRun) {
      try {
        await tree.syncAliases(conf.name);
      } catch (err) {
        runError = `sync of the aliases of ${conf.name} failed: ${errorMessage(err)}`;
        clog.error(runError);
      }
    }
  }
  if (!opts.dryRun) {
    await tree.cleanupTree();
    const outcome = result.failed === 0 && !runError ? "ok" : result.published > 0 ? "partial" : "failed";
    history!.finishRun(runId!, outcome, runError ?? (result.failed ? `${result.failed} device(s) failed` : null));
  }
  return result;
}

/** http_connect_timeout, else the default 10 s capped by a shorter http_timeout; else the generators' own. */
function firstByteTimeout(config: Config): Pick<FetchOptions, "connectTimeoutMs"> {
  if (config.http_connect_timeout) return { connectTimeoutMs: config.http_connect_timeout * 1000 };
  if (config.http_timeout) return { connectTimeoutMs: Math.min(config.http_timeout, 10) * 1000 };
  return {};
}
