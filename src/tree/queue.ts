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
