/**
 * One shell session: `pub` (the Tree, on a LockingQueue) and `conf`, with every operation
 * tracked, so that the shell can wait for operations nobody awaited, and report the failures
 * nobody handled as one line each (`pub.create_channel('x'): Channel already exists: x`)
 * instead of an unhandled-rejection crash.
 *
 * Tracking works through a Proxy: each call returns a fresh promise chained on the Tree's,
 * which fails with a ShellOpError naming the call.
 * (The Tree's own promise is always "handled" by its queue, so Node would never report it.)
 * A fresh promise that rejects with no handler is reported by Node's unhandledRejection
 * event, and withdrawn by rejectionHandled if the code handles it later.
 */
import { relative } from "node:path";
import { inspect } from "node:util";
import type { Config } from "../config/types.js";
import type { Signer } from "../pgp/signer.js";
import { Device, openTree, type Tree } from "../tree/index.js";
import type { Logger } from "../io/log.js";
import { shellAdmin, type ShellAdmin } from "./admin.js";
import { LockingQueue } from "./locking-queue.js";

export interface Failure {
  label: string;
  error: unknown;
}

export interface SessionOptions {
  lockWaitMs: number;
  /** Progress of the admin commands (`admin.copy_image`, ...). */
  log?: Logger;
  signer?: Signer;
  /** Told when an operation has to wait for the global lock. */
  onLockWait?: (message: string) => void;
  /** Called when an operation nobody handles fails (interactive: print it at once). */
  onUnhandled?: (f: Failure) => void;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";

/**
 * A failed operation, as the shell shows it: one line, `KeyError: pub.create_channel('x'):
 * Channel already exists: x` (the tree's error kind, the call, the message), no stack.
 * The original error is `original` (not `cause`, which the REPL would print in full).
 */
export class ShellOpError extends Error {
  declare readonly original: unknown;
  constructor(label: string, original: unknown) {
    super(`${label}: ${messageOf(original)}`);
    Object.defineProperty(this, "original", { value: original, enumerable: false });
    this.name = new.target.name;
    this.stack = `${this.name}: ${this.message}`;
  }

  /** The error for a failed call, its class named after the tree's error kind (inspect shows that name). */
  static of(label: string, original: unknown): ShellOpError {
    const kind = (original as { kind?: unknown } | null)?.kind;
    const name = typeof kind === "string" && /^[A-Z][A-Za-z]*Error$/.test(kind) ? kind : "Error";
    let cls = KINDS.get(name);
    if (!cls) {
      cls = { [name]: class extends ShellOpError {} }[name]!;
      KINDS.set(name, cls);
    }
    return new cls(label, original);
  }
}
const KINDS = new Map<string, typeof ShellOpError>();

const argText = (a: unknown) => inspect(a, { depth: 2, breakLength: Infinity, compact: true });

export class ShellSession {
  readonly queue: LockingQueue;
  readonly tree: Tree;
  readonly pub: Tree;
  readonly conf: Config;
  readonly admin: ShellAdmin;
  /** Every tracked call not yet settled (admin commands do not run on the queue). */
  private readonly pending = new Set<Promise<unknown>>();
  /** Rejected promises nobody handled (yet), with what they were. */
  readonly unhandled = new Map<Promise<unknown>, Failure>();
  private readonly onRejection = (reason: unknown, promise: Promise<unknown>) => {
    const f = { label: reason instanceof ShellOpError ? "" : "not awaited", error: reason };
    this.unhandled.set(promise, f);
    this.opts.onUnhandled?.(f);
  };
  private readonly onHandled = (promise: Promise<unknown>) => {
    this.unhandled.delete(promise);
  };

  constructor(
    config: Config,
    private readonly opts: SessionOptions,
  ) {
    this.conf = config;
    this.queue = new LockingQueue(config.state_path, opts.lockWaitMs, opts.onLockWait);
    this.tree = openTree(config, opts.signer, { queue: this.queue });
    this.pub = this.track(this.tree, "pub");
    this.admin = this.track(
      shellAdmin({ config, log: opts.log, lockWaitMs: opts.lockWaitMs, signer: opts.signer }, (fn) => this.queue.runUnlocked(fn)),
      "admin",
    );
    process.on("unhandledRejection", this.onRejection);
    process.on("rejectionHandled", this.onHandled);
  }

  /** A view of `obj` whose method calls are tracked (Devices handed out are tracked too). */
  track<T extends object>(obj: T, name: string): T {
    const cache = new Map<PropertyKey, unknown>();
    return new Proxy(obj, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== "function" || prop === "constructor") return value;
        let wrapped = cache.get(prop);
        if (!wrapped) {
          const fn = value as (...a: unknown[]) => unknown;
          wrapped = (...args: unknown[]) => {
            const label = `${name}.${String(prop)}(${args.map(argText).join(", ")})`;
            const result = fn.apply(target, args);
            if (!isThenable(result)) return result;
            const base = Promise.resolve(result);
            this.pending.add(base);
            const forget = () => this.pending.delete(base);
            base.then(forget, forget); // a handler on `base` only: the caller's promise stays reportable
            return base.then(
              (v) => (v instanceof Device ? this.track(v, this.deviceName(v)) : v),
              (err: unknown) => {
                throw ShellOpError.of(label, err);
              },
            );
          };
          cache.set(prop, wrapped);
        }
        return wrapped;
      },
    });
  }

  private deviceName(d: Device): string {
    return `device(${relative(this.conf.publish_path, d.path)})`;
  }

  /**
   * Waits until every operation started so far, and every operation those start in turn
   * (`pub.get_device(...).then((d) => d.create_image(...))`), has finished.
   */
  async settle(): Promise<void> {
    for (;;) {
      await this.queue.idle();
      await Promise.allSettled([...this.pending]);
      // Let continuations of the last operation start their follow-ups.
      await new Promise((r) => setImmediate(r));
      if (this.queue.pending === 0 && this.pending.size === 0) return;
    }
  }

  /** Failures nobody handled, oldest first, and forgets them. */
  takeUnhandled(): Failure[] {
    const out = [...this.unhandled.values()];
    this.unhandled.clear();
    return out;
  }

  close(): void {
    process.off("unhandledRejection", this.onRejection);
    process.off("rejectionHandled", this.onHandled);
    this.queue.close();
  }
}

/** An error's message, also for errors made in the script's own realm (not `instanceof Error` here). */
export function messageOf(err: unknown): string {
  const m = (err as { message?: unknown } | null)?.message;
  return (typeof m === "string" ? m : String(err)).split("\n")[0];
}

/** `label: message`, one line. */
export function failureLine(f: Failure): string {
  return f.label ? `${f.label}: ${messageOf(f.error)}` : messageOf(f.error);
}
