/**
 * The tail every tree-changing admin command ends with (server-reference §9.2 step 16,
 * §9.3 step 6, §9.9): delete orphans, then ask the mirrors to pull. A mirror that cannot be
 * triggered is reported, not fatal: the tree itself is already published.
 */
import type { Config } from "../config/types.js";
import { syncMirrors } from "../config/mirrors.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../io/log.js";
import type { Tree } from "../tree/index.js";

export interface FinishOptions {
  log: Logger;
  /** Mirror trigger runner (tests inject one). */
  runMirror?: (argv: string[]) => Promise<void>;
}

/** cleanup_tree(); returns the orphans it removed (absolute paths). */
export async function removeOrphans(tree: Tree, log: Logger): Promise<string[]> {
  const orphans = await tree.listOrphanedFiles();
  await tree.cleanupTree();
  for (const o of orphans) log.debug(`removed orphan ${o}`);
  return orphans;
}

/** sync_mirrors(), logging (not throwing) when a mirror cannot be triggered. */
export async function triggerMirrors(config: Config, opts: FinishOptions): Promise<void> {
  if (Object.keys(config.mirrors).length === 0) return;
  try {
    await syncMirrors(config, opts.runMirror);
    opts.log.info("triggered the mirrors");
  } catch (err) {
    opts.log.error(errorMessage(err));
  }
}

export async function finish(config: Config, tree: Tree, opts: FinishOptions): Promise<{ removed: string[] }> {
  const removed = await removeOrphans(tree, opts.log);
  await triggerMirrors(config, opts);
  return { removed };
}
