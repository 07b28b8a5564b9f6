/**
 * `import-images` (server-reference §5.6): under the global lock, every automatic channel in
 * config order, every device of it; then alias sync per channel, orphan cleanup and mirror
 * triggers. Each run and each device is recorded in the import history.
 */
import type { Config } from "../config/types.js";
import { syncMirrors } from "../config/mirrors.js";
import { errorMessage } from "../errors.js";
import { makeGeneratorContext, type GeneratorContext } from "../generators/index.js";
import { removeStalePoolTemps } from "../generators/pool.js";
import type { FetchOptions } from "../io/fetch.js";
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
  runMirror?: (argv: string[]) => Promise<void>;
  /** Called once the run is recorded in the history (not for a dry run). */
  onRunStarted?: (runId: number) => void;
}

export interface ImportResult {
  runId?: number;
  plans: DevicePlan[];
  devices: DeviceRecord[];
  failed: number;
  published: number;
}

export async function importImages(config: Config, opts: ImportOptions): Promise<ImportResult> {
  const result: ImportResult = { plans: [], devices: [], failed: 0, published: 0 };
  // A dry run reads only: it neither waits for nor takes the lock.
  const lock = opts.dryRun ? undefined : acquireGlobalLock(config.state_path);
  // Holding the lock, no other import can be running: any run still "running" is interrupted.
  const history = opts.dryRun ? undefined : ImportHistory.open(config.state_path, { lockHeld: true });
  try {
    const runId = history?.startRun(opts.trigger ?? "cli", false);
    result.runId = runId;
    if (runId !== undefined) opts.onRunStarted?.(runId);
    try {
      return await runChannels(config, opts, result, history, runId);
    } catch (err) {
      // A run that dies (tree unreadable, cleanup failing...) is recorded, never left "running".
      if (runId !== undefined) history!.finishRun(runId, "failed", errorMessage(err));
      throw err;
    }
  } finally {
    history?.close();
    lock?.release();
  }
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
      ...(config.http_timeout ? { connectTimeoutMs: config.http_timeout * 1000, readTimeoutMs: config.http_timeout * 1000 } : {}),
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
        rec = { channel: conf.name, device, outcome: r.outcome, version: r.outcome === "published" ? r.version : null, files: r.files.length, bytes: r.bytes, steps: r.steps, startedAt, finishedAt: gctx.clock() };
        if (r.outcome === "published") {
          result.published++;
          dlog.info(`published version ${r.version} (${r.files.length} files${r.deltas.length ? `, deltas from ${r.deltas.map((d) => d.base).join(", ")}` : ""})`, { version: r.version });
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
    if (Object.keys(config.mirrors).length) await syncMirrors(config, opts.runMirror);
    const outcome = result.failed === 0 && !runError ? "ok" : result.published > 0 ? "partial" : "failed";
    history!.finishRun(runId!, outcome, runError ?? (result.failed ? `${result.failed} device(s) failed` : null));
  }
  return result;
}
