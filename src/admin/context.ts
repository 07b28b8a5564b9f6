/**
 * What every admin operation gets: the config, a logger for progress, how long to wait for
 * the global lock, and the parts tests replace (signer, clock, mirror runner). The CLI, the
 * shell and the dashboard each build one.
 */
import type { Config } from "../config/types.js";
import { makeGeneratorContext, type GeneratorContext } from "../generators/index.js";
import { createLogger, type Logger } from "../io/log.js";
import type { Clock } from "../model/generated-at.js";
import { LocalSigner } from "../pgp/local-signer.js";
import type { Signer } from "../pgp/signer.js";
import { openTree, type Tree } from "../tree/index.js";
import type { TreeOptions } from "../tree/context.js";
import { DEFAULT_LOCK_WAIT_MS, type LockOptions } from "./lock.js";

export interface AdminContext {
  config: Config;
  log?: Logger;
  /** How long to wait for the global lock (default 60 s). */
  lockWaitMs?: number;
  signer?: Signer;
  clock?: Clock;
  runMirror?: (argv: string[]) => Promise<void>;
}

export interface Resolved {
  config: Config;
  log: Logger;
  lockWaitMs: number;
  signer: Signer;
  treeOpts: TreeOptions;
  tree: Tree;
  runMirror?: (argv: string[]) => Promise<void>;
}

const quiet = createLogger({ level: "error", json: false, write: () => {} });

export function resolve(ctx: AdminContext): Resolved {
  const signer = ctx.signer ?? new LocalSigner(ctx.config.gpg_key_path);
  const treeOpts: TreeOptions = { signer, clock: ctx.clock };
  return {
    config: ctx.config,
    log: ctx.log ?? quiet,
    lockWaitMs: ctx.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    signer,
    treeOpts,
    tree: openTree(ctx.config, signer, { clock: ctx.clock }),
    runMirror: ctx.runMirror,
  };
}

/** Lock options for `what`: wait as configured, say so on the log when the wait begins. */
export function lockOptions(r: Resolved, what: string): LockOptions {
  return { waitMs: r.lockWaitMs, what, onWait: (m) => r.log.warn(m) };
}

/** A generator context whose progress lines go to the admin logger at debug level. */
export function generatorContext(r: Resolved, clock?: Clock): GeneratorContext {
  return makeGeneratorContext(r.config, {
    signer: r.signer,
    clock,
    // "W: " lines (an unverified upstream, a dangling hard link) are warnings an operator must see.
    log: (line) => (line.startsWith("W: ") ? r.log.warn(line.slice(3)) : r.log.debug(line.replace(/^[A-Z]: /, ""))),
  });
}
