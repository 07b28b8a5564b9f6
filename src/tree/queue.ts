import { resolve } from "node:path";

/**
 * One operation at a time, in call order. The admin shell may fire calls without awaiting
 * them (`for (const k of keys) pub.publish_keyring(k)`); each still runs to completion before
 * the next starts, and a failure rejects only its own promise.
 */
export class OpQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

const shared = new Map<string, OpQueue>();

/**
 * The queue of every Tree and Device over one directory in this process, so that two of
 * them (the shell's and the scheduler's, say) cannot interleave load-change-commit cycles.
 */
export function sharedQueue(root: string): OpQueue {
  const key = resolve(root);
  let q = shared.get(key);
  if (!q) {
    q = new OpQueue();
    shared.set(key, q);
  }
  return q;
}
