/**
 * What Tree and Device share: the transaction context, the operation queue, and the optional
 * observer (for audit logs and tests), plus the snake_case aliases of the reference API.
 */
import type { Config } from "../config/types.js";
import { defaultCodec, type XzCodec } from "../io/xz.js";
import { systemClock, type Clock } from "../model/generated-at.js";
import { LocalSigner } from "../pgp/local-signer.js";
import type { Signer } from "../pgp/signer.js";
import { sharedQueue, type OpQueue } from "./queue.js";
import { runTxn, type TreeContext, type Txn } from "./txn.js";

/** Reported around every queued operation, in queue order. */
export interface OperationEvent {
  op: string;
  args: unknown[];
  phase: "start" | "end" | "error";
  error?: unknown;
}

export interface TreeOptions {
  /** Default: `new LocalSigner(config.gpg_key_path)`. */
  signer?: Signer;
  /** Time for generated_at and version tarball mtimes (default: now). */
  clock?: Clock;
  codec?: XzCodec;
  /**
   * Default: one queue per published directory in this process, shared by every Tree and
   * Device over it (and by every Device a Tree hands out), so operations run one at a time.
   */
  queue?: OpQueue;
  onOperation?: (event: OperationEvent) => void;
}

export class Runner {
  readonly queue: OpQueue;
  constructor(
    readonly ctx: TreeContext,
    readonly opts: TreeOptions,
  ) {
    this.queue = opts.queue ?? sharedQueue(ctx.root);
  }

  static context(config: Config, root: string, opts: TreeOptions): TreeContext {
    return {
      config,
      root,
      signer: opts.signer ?? new LocalSigner(config.gpg_key_path),
      clock: opts.clock ?? systemClock,
      codec: opts.codec ?? defaultCodec(),
    };
  }

  /** Queues `fn`, reporting start and end to the observer. */
  run<T>(op: string, args: unknown[], fn: () => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      const report = this.opts.onOperation;
      report?.({ op, args, phase: "start" });
      try {
        const r = await fn();
        report?.({ op, args, phase: "end" });
        return r;
      } catch (error) {
        report?.({ op, args, phase: "error", error });
        throw error;
      }
    });
  }

  /** Queues a transaction (load → change → sign → commit). */
  txn<T>(op: string, args: unknown[], fn: (t: Txn) => Promise<T>): Promise<T> {
    return this.run(op, args, () => runTxn(this.ctx, fn));
  }
}

/** camelCase name → reference snake_case name (`createChannel` → `create_channel`). */
export function snakeName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Adds `snake_case` twins of the listed camelCase methods to a prototype. */
export function addSnakeAliases(proto: object, methods: readonly string[]): void {
  for (const m of methods) {
    Object.defineProperty(proto, snakeName(m), {
      value: (proto as Record<string, unknown>)[m],
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
}
