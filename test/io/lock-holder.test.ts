/**
 * The global lock names its holder (issue 15 item 4): a busy lock says which command holds
 * it, with its pid and since when, instead of a bare "Something else holds the global lock".
 * The holder is a real process (a node child of the compiled lock module); the label is only
 * believed while its pid lives, and the kernel lock still decides.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { LockBusyError } from "../../src/errors.js";
import { BUSY_MESSAGE, acquireGlobalLock, afterGlobalLock, holderPath, holdsGlobalLock } from "../../src/io/lock.js";
import { REPO } from "../helpers/instance.js";

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

/** A process that takes the lock as `holder` and keeps it until killed. */
async function holdLock(statePath: string, holder: string): Promise<ChildProcess> {
  const lockModule = pathToFileURL(join(REPO, "dist/src/io/lock.js")).href;
  const code = `const { acquireGlobalLock } = await import(${JSON.stringify(lockModule)});
globalThis.held = acquireGlobalLock(${JSON.stringify(statePath)}, { holder: ${JSON.stringify(holder)} });
console.log("locked");
setInterval(() => {}, 1 << 30);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("locked") && resolve());
    child.once("exit", (c) => reject(new Error(`lock holder exited with ${c}`)));
  });
  return child;
}

function busy(statePath: string): LockBusyError {
  try {
    acquireGlobalLock(statePath).release();
  } catch (err) {
    if (err instanceof LockBusyError) return err;
    throw err;
  }
  throw new Error("the lock was free");
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe("the global lock's holder", () => {
  it("a busy lock names the command, pid and start time of its holder; exit status 0 as before", async () => {
    const state = mkdtempSync(join(tmpdir(), "si-lock-"));
    const holder = await holdLock(state, "import-images");
    const label = JSON.parse(readFileSync(holderPath(state), "utf8")) as { command: string; pid: number; since: string };
    expect(label).toEqual({ command: "import-images", pid: holder.pid, since: expect.stringMatching(ISO) as string });
    const err = busy(state);
    expect(err.exitCode).toBe(0);
    expect(err.message).toBe(`Something else holds the global lock (import-images, pid ${holder.pid}, since ${label.since}). exiting.`);
  });

  it("a holder killed by SIGKILL leaves a label that is not believed; the next holder replaces it and removes it on release", async () => {
    const state = mkdtempSync(join(tmpdir(), "si-lock-"));
    const dead = await holdLock(state, "import-images");
    dead.kill("SIGKILL");
    await new Promise((r) => dead.once("exit", r));
    expect(existsSync(holderPath(state))).toBe(true); // the stale label

    // The kernel released the lock; a live process holding it under the stale label (the
    // moment between its BEGIN EXCLUSIVE and its label) is "unknown", never the dead pid.
    const lock = acquireGlobalLock(state, { holder: "copy-image devel rc mako" });
    expect(holdsGlobalLock()).toBe(true);
    const label = JSON.parse(readFileSync(holderPath(state), "utf8")) as { command: string; pid: number };
    expect([label.command, label.pid]).toEqual(["copy-image devel rc mako", process.pid]);
    lock.release();
    expect(existsSync(holderPath(state))).toBe(false);
    expect(holdsGlobalLock()).toBe(false);

    const again = await holdLock(state, "import-images (scheduled)");
    again.kill("SIGKILL");
    await new Promise((r) => again.once("exit", r));
    const other = await holdLock(state, "x");
    // Simulate the window: the new holder has the lock, the file still names the dead one.
    writeFileSync(holderPath(state), JSON.stringify({ command: "import-images", pid: again.pid, since: "2026-01-01T00:00:00Z" }));
    expect(busy(state).message).toBe(BUSY_MESSAGE);
    other.kill("SIGKILL");
  });

  it("work queued with afterGlobalLock runs only once the lock is released", async () => {
    const state = mkdtempSync(join(tmpdir(), "si-lock-"));
    const lock = acquireGlobalLock(state, { holder: "test" });
    const order: string[] = [];
    const done = afterGlobalLock(async () => {
      order.push(`ran, lock held: ${holdsGlobalLock()}`);
      return 42;
    });
    await new Promise((r) => setTimeout(r, 20));
    order.push("releasing");
    lock.release();
    expect(await done).toBe(42);
    expect(order).toEqual(["releasing", "ran, lock held: false"]);
    // With no lock held it runs at once.
    expect(await afterGlobalLock(async () => "now")).toBe("now");
  });
});
