/**
 * The tail every tree-changing admin command ends with (server-reference §9.2 step 16,
 * §9.3 step 6, §9.9): delete orphans, then ask the mirrors to pull. A mirror that cannot be
 * triggered is reported (one line per mirror), not fatal: the tree itself is already
 * published. Mirrors run once the global lock is released (issue 15 item 4): trigger mirrors
 * are asked to pull, rsync and rclone mirrors are pushed to (issue 16).
 */
import type { Config } from "../config/types.js";
import { syncMirrors, type MirrorRunner } from "../config/mirrors.js";
import { errorMessage } from "../errors.js";
import { pushMirrors } from "../mirror/push.js";
import { afterGlobalLock, holdsGlobalLock } from "../io/lock.js";
import type { Logger } from "../io/log.js";
import type { Tree } from "../tree/index.js";

export interface FinishOptions {
  log: Logger;
  /** Mirror trigger runner (tests inject one). */
  runMirror?: MirrorRunner;
}

/** cleanup_tree(); returns the orphans it removed (absolute paths). */
export async function removeOrphans(tree: Tree, log: Logger): Promise<string[]> {
  const orphans = await tree.listOrphanedFiles();
  await tree.cleanupTree();
  for (const o of orphans) log.debug(`removed orphan ${o}`);
  return orphans;
}

/**
 * sync_mirrors() and the pushes, logging (never throwing) each mirror's outcome. Called while the caller
 * still holds the global lock, it only queues the triggers for the release and returns (the
 * process stays up until they end); otherwise it waits for them.
 */
export async function triggerMirrors(config: Config, opts: FinishOptions): Promise<void> {
  if (Object.keys(config.mirrors).length === 0) return;
  const deferred = holdsGlobalLock();
  // Trigger mirrors and push mirrors at once; neither throws for a mirror's failure.
  const both = () =>
    Promise.all([syncMirrors(config, { log: opts.log, run: opts.runMirror }), pushMirrors(config, { log: opts.log, trigger: "admin" })]);
  const done = afterGlobalLock(both).catch((err: unknown) => {
    opts.log.error(`Cannot trigger the mirrors: ${errorMessage(err)}`);
  });
  if (!deferred) await done;
}

export async function finish(config: Config, tree: Tree, opts: FinishOptions): Promise<{ removed: string[] }> {
  const removed = await removeOrphans(tree, opts.log);
  await triggerMirrors(config, opts);
  return { removed };
}
