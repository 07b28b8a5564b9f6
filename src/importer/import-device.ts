/**
 * One device of one automatic channel (server-reference §5.6 step 3): run the generators in
 * config order, make the deltas, publish the full image and its deltas in one index commit,
 * expire old images. A failing generator cancels this device's image and leaves its
 * published files untouched; pool files it wrote become orphans that cleanup removes.
 */
import { realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ChannelConfig } from "../config/types.js";
import { generateDelta, generateFile, type Environment, type GeneratorContext } from "../generators/index.js";
import type { Logger } from "../io/log.js";
import type { ChannelsDoc } from "../model/channels.js";
import type { Image } from "../model/index-doc.js";
import { errorMessage } from "../errors.js";
import { filePrefix } from "../model/naming.js";
import { setTagOnVersionDetail } from "../model/version-detail.js";
import { RolloutStore } from "../state/rollouts.js";
import type { Tree } from "../tree/index.js";
import { expandPath } from "../tree/index.js";
import { alwaysShipped, deltaBases, deltaSource, latestFull, localDate, nextDateTag, nextVersion, resolveEntries } from "./plan.js";

export interface DevicePlan {
  channel: string;
  device: string;
  version: number;
  bases: number[];
  entries: { name: string; generator: string; arguments: string[] }[];
  warnings: string[];
}

export interface DeviceOutcome {
  outcome: "published" | "unchanged" | "failed";
  version: number;
  files: string[];
  deltas: { base: number; files: string[] }[];
  bytes: number;
  steps: Record<string, number>;
  error?: string;
}

/**
 * The delta source's SHA-256 from the index entry devices verified (when its size matches
 * the file): its stored catalogue is checked against it without hashing the file again.
 */
function seedDigest(gctx: GeneratorContext, path: string, entry: { checksum: string; size: number } | undefined): void {
  if (!entry || gctx.checksums.has(path) || !/^[0-9a-f]{64}$/.test(entry.checksum)) return;
  try {
    if (statSync(path).size === entry.size) gctx.checksums.set(path, { sha256: entry.checksum, size: entry.size });
  } catch {
    // missing: the delta reports it
  }
}

async function imagesOf(tree: Tree, channels: ChannelsDoc, channel: string, device: string): Promise<Image[]> {
  if (!channels[channel]?.devices?.[device]) return [];
  return (await tree.getDevice(channel, device)).listImages();
}

/** The plan of one device, without running anything (also what --dry-run prints). */
export async function planDevice(
  tree: Tree,
  channels: ChannelsDoc,
  conf: ChannelConfig,
  device: string,
): Promise<{ plan: DevicePlan; images: Image[]; bases: Image[] }> {
  const images = await imagesOf(tree, channels, conf.name, device);
  const others = new Map<string, Image[]>();
  for (const b of conf.deltabase) others.set(b, b === conf.name ? images : await imagesOf(tree, channels, b, device));
  const { bases, warnings } = deltaBases(channels, conf, device, images, (c) => others.get(c) ?? []);
  const plan: DevicePlan = {
    channel: conf.name,
    device,
    version: nextVersion(images, conf.versionbase),
    bases: bases.map((b) => b.version),
    entries: resolveEntries(conf.files, device).map((r) => ({
      name: r.fileName,
      generator: r.entry.generator,
      arguments: r.entry.arguments,
    })),
    warnings: warnings.map((w) => w.message),
  };
  return { plan, images, bases };
}

export async function importDevice(
  tree: Tree,
  channels: ChannelsDoc,
  conf: ChannelConfig,
  device: string,
  gctx: GeneratorContext,
  log: Logger,
): Promise<DeviceOutcome> {
  const publish = gctx.config.publish_path;
  const { plan, images, bases } = await planDevice(tree, channels, conf, device);
  for (const w of plan.warnings) log.warn(w);
  const lastFull = latestFull(images);
  const lastPaths = new Set((lastFull?.files ?? []).map((f) => f.path));
  const env: Environment = {
    channel_name: conf.name,
    device_name: device,
    device: join(publish, conf.name, device),
    version: plan.version,
    version_detail: [],
    new_files: [],
  };
  const result: DeviceOutcome = {
    outcome: "unchanged",
    version: plan.version,
    files: [],
    deltas: bases.map((b) => ({ base: b.version, files: [] })),
    bytes: 0,
    steps: {},
  };
  const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      result.steps[step] = (result.steps[step] ?? 0) + Math.round(performance.now() - t0);
    }
  };

  for (const { name, generator, arguments: args } of plan.entries) {
    if (name === "ubports") {
      // Automatic date tag, set before the ubports generator runs (§5.6).
      const tagged = setTagOnVersionDetail(env.version_detail, nextDateTag(localDate(gctx.clock()), lastFull));
      env.version_detail.splice(0, env.version_detail.length, ...tagged);
    }
    const path = await timed(`file:${name}`, () => generateFile(gctx, generator, args, env));
    if (path === null) {
      // version/keyring with nothing new: no image this run (§5.6 "why an image is skipped").
      log.debug(`${name}: nothing new`, { step: name });
      env.new_files.length = 0;
      break;
    }
    const { url } = expandPath(path, publish);
    result.files.push(path);
    if (!lastPaths.has(url)) env.new_files.push(path);
    log.info(`${name}: ${url}`, { step: name, duration_ms: result.steps[`file:${name}`] });
    const prefix = filePrefix(url);
    for (const [i, base] of bases.entries()) {
      const src = deltaSource(base, prefix);
      if (!src) {
        result.deltas[i].files.push(path);
        continue;
      }
      const srcAbs = realpathSync(join(publish, src));
      seedDigest(
        gctx,
        srcAbs,
        base.files.find((f) => f.path === src),
      );
      // An unchanged file is left out of the delta, except keyring and boot overlays (§5.6).
      if (srcAbs === path && !alwaysShipped(url)) continue;
      // The channel's mtime policy: it decides what the delta carries (and its pool name).
      const delta = await timed("delta", () => generateDelta(gctx, srcAbs, path, { mtime: conf.delta_mtime }));
      result.deltas[i].files.push(delta);
    }
  }
  if (env.new_files.length === 0) return result;

  const detail = env.version_detail.join(",");
  const device_ = await tree.getDevice(conf.name, device);
  await timed("publish", () =>
    device_.createImages(
      [
        { type: "full", version: plan.version, description: detail, paths: result.files, versionDetail: detail },
        ...result.deltas
          .filter((d) => d.files.length > 0)
          .map((d) => ({ type: "delta", version: plan.version, description: detail, paths: d.files, base: d.base, versionDetail: detail })),
      ],
      // A channel with `rollout` publishes the image at its first step (issue 17).
      { checksums: gctx.checksums, phasedPercentage: conf.rollout?.[0].percentage },
    ),
  );
  if (conf.rollout) recordRollout(gctx, conf, device, plan.version, log);
  result.outcome = "published";
  for (const f of new Set([...result.files, ...result.deltas.flatMap((d) => d.files)])) result.bytes += gctx.checksums.get(f)?.size ?? 0;
  return result;
}

/**
 * Records the rollout the image was published at the first step of: the scheduler's rollout
 * tick (src/rollout/tick.ts) raises it from there. Any open rollout of an older version of
 * the device is superseded (a new version reshuffles device phases: client-protocol §6.3).
 */
function recordRollout(gctx: GeneratorContext, conf: ChannelConfig, device: string, version: number, log: Logger): void {
  const steps = conf.rollout!;
  try {
    RolloutStore.with(gctx.config.state_path, (s) =>
      s.start({
        channel: conf.name,
        device,
        version,
        steps,
        startedAt: gctx.clock(),
        floor: conf.rollout_floor,
        graceHours: conf.rollout_grace_hours,
        minDownloads: conf.rollout_min_downloads,
      }),
    );
  } catch (err) {
    // The image is published (at the first step): say how to get it raised, do not fail it.
    log.error(
      `Cannot record the rollout of version ${version}: ${errorMessage(err)}; it stays at ${steps[0].percentage}% until ` +
        `'si rollout start ${conf.name} ${device} ${version}' or 'si set-phased-percentage' raises it`,
      { version },
    );
    return;
  }
  log.info(`staged rollout of version ${version} started at ${steps[0].percentage}%`, { version, trigger: "rollout" });
}
