/**
 * What rollout operations share: the context, the newest version a device offers, and the
 * record of each phased-percentage change in the import history (trigger `rollout`), so
 * `si history` and the dashboard list every raise next to the imports.
 */
import type { AdminContext } from "../admin/context.js";
import type { Logger } from "../io/log.js";
import { ImportHistory } from "../state/history.js";
import type { Tree } from "../tree/index.js";
import type { DownloadCounts } from "./downloads.js";

export interface RolloutContext extends AdminContext {
  /** The rollout clock (tests inject a fake one); default the system time. */
  now?: () => Date;
  /** Downloads of an image since a time (the pause rule); default the fleet store's. */
  counts?: DownloadCounts;
}

export const TRIGGER = "rollout";

/** The device's newest version, or null (no images, or the channel/device is gone). */
export async function newestVersion(tree: Tree, channel: string, device: string): Promise<number | null> {
  const doc = await tree.listChannels();
  if (!Object.hasOwn(doc, channel) || !Object.hasOwn(doc[channel].devices, device)) return null;
  const images = await (await tree.getDevice(channel, device)).listImages();
  return images.length ? Math.max(...images.map((i) => i.version)) : null;
}

export interface PercentageChange {
  channel: string;
  device: string;
  version: number;
  from: number;
  to: number;
}

/** One history run (trigger `rollout`) with one device row for a phased-percentage change. */
export function recordChange(statePath: string, change: PercentageChange, startedAt: Date, finishedAt: Date, error?: string): void {
  const history = ImportHistory.open(statePath, { sweep: false });
  try {
    const id = history.startRun(TRIGGER, false, startedAt);
    history.recordDevice(id, {
      channel: change.channel,
      device: change.device,
      outcome: error ? "failed" : "published",
      version: change.version,
      files: 0,
      bytes: 0,
      steps: {},
      error: error ?? null,
      startedAt,
      finishedAt,
    });
    history.finishRun(id, error ? "failed" : "ok", error ?? null, finishedAt);
  } finally {
    history.close();
  }
}

export function logChange(log: Logger, c: PercentageChange, why: string): void {
  log.info(`rollout of ${c.channel}/${c.device} version ${c.version}: ${c.from}% → ${c.to}% (${why})`, {
    channel: c.channel,
    device: c.device,
    version: c.version,
    trigger: TRIGGER,
  });
}
