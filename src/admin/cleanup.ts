/**
 * cleanup-tree (server-reference §9.9): expire old images of every configured channel
 * (auto or manual) that has `fullcount`, re-sync their aliases, delete orphaned files and
 * trigger the mirrors. Like import-images it does not wait for the global lock: when busy it
 * says so and exits 0 (a cron job simply runs again later).
 *
 * Alias and redirect channels are skipped for expiry: their images follow their target's
 * (the reference expired them too, and the next sync of the target put them back).
 */
import { aliasTarget, isPerDeviceRedirect } from "../model/channels.js";
import { resolve, type AdminContext } from "./context.js";
import { finish } from "./finish.js";
import { withLock } from "./lock.js";

export interface CleanupResult {
  expired: { channel: string; device: string; images: { type: string; version: number; base?: number }[] }[];
  removed: string[];
}

export async function cleanupTree(actx: AdminContext): Promise<CleanupResult> {
  const r = resolve({ ...actx, lockWaitMs: 0 });
  const { config, tree, log } = r;
  return withLock(config.state_path, { waitMs: 0, what: "clean up the tree" }, async () => {
    const result: CleanupResult = { expired: [], removed: [] };
    const doc = await tree.listChannels();
    const present = [...config.channels.values()].filter((c) => Object.hasOwn(doc, c.name));
    for (const conf of present) {
      const ch = doc[conf.name];
      if (conf.fullcount <= 0 || Object.hasOwn(ch, "redirect") || aliasTarget(doc, conf.name) !== undefined) continue;
      for (const [device, entry] of Object.entries(ch.devices)) {
        if (isPerDeviceRedirect(entry)) continue;
        const dev = await tree.getDevice(conf.name, device);
        const before = await dev.listImages();
        await dev.expireImages(conf.fullcount);
        const after = new Set((await dev.listImages()).map((i) => JSON.stringify([i.type, i.version, i.base])));
        const gone = before.filter((i) => !after.has(JSON.stringify([i.type, i.version, i.base])));
        if (gone.length) {
          result.expired.push({
            channel: conf.name,
            device,
            images: gone.map((i) => ({ type: i.type, version: i.version, ...(typeof i.base === "number" ? { base: i.base } : {}) })),
          });
          log.info(`${conf.name}/${device}: expired ${gone.length} image(s), keeping ${conf.fullcount} full`);
        }
      }
    }
    for (const conf of present) await tree.syncAliases(conf.name);
    result.removed = (await finish(config, tree, { log, runMirror: r.runMirror })).removed;
    return result;
  });
}

export function describeCleanup(r: CleanupResult, root: string): string[] {
  const lines: string[] = [];
  for (const e of r.expired) {
    const what = e.images.map((i) => (i.type === "delta" ? `delta ${i.base}→${i.version}` : `full ${i.version}`)).join(", ");
    lines.push(`I: expired ${e.channel}/${e.device}: ${what}`);
  }
  for (const f of r.removed) lines.push(`I: removed ${f.startsWith(root + "/") ? f.slice(root.length + 1) : f}`);
  if (lines.length === 0) lines.push("I: nothing to clean up");
  return lines;
}
