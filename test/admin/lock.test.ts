/**
 * The global lock against a holder in another process (server-reference §8.6): admin
 * commands wait for it (saying so), fail after --lock-timeout with a clear message and
 * change nothing, or go ahead once it is released; cleanup-tree, like import-images, says
 * the lock is busy and exits 0.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { holderPath } from "../../src/io/lock.js";
import { REPO } from "../helpers/instance.js";
import { fingerprint } from "../tree/fixture.js";
import { adminFixture, expectOneLineError, poolTarball, publishFull, readIndex, siAsync } from "./fixture.js";

const holders: ChildProcess[] = [];
afterEach(() => {
  for (const h of holders.splice(0)) h.kill("SIGKILL");
});

/** A process that takes the global lock and keeps it until killed. */
async function holdLock(statePath: string): Promise<ChildProcess> {
  const lockModule = pathToFileURL(join(REPO, "dist/src/io/lock.js")).href;
  const code = `const { acquireGlobalLock } = await import(${JSON.stringify(lockModule)});
globalThis.heldLock = acquireGlobalLock(${JSON.stringify(statePath)});
console.log("locked");
setInterval(() => {}, 1 << 30);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  holders.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("locked") && resolve());
    child.once("exit", (c) => reject(new Error(`lock holder exited with ${c}`)));
  });
  return child;
}

/** Resolves once `text` appears on the child's stderr. */
const stderrShows = (child: ChildProcess, text: string) =>
  new Promise<void>((resolve) => {
    let seen = "";
    child.stderr!.on("data", (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) resolve();
    });
  });

describe("the global lock", () => {
  it("makes admin commands wait, then fail after --lock-timeout without changing anything; cleanup-tree exits 0", async () => {
    const fx = await adminFixture();
    for (const c of ["devel", "rc"]) {
      fx.ok("channel", "create", c);
      fx.ok("device", "create", c, "mako");
    }
    await poolTarball(fx, "pool/ubports-1.tar.xz", { "system/x": "1\n" });
    await publishFull(fx, "devel", "mako", 1, ["pool/ubports-1.tar.xz"], ["u=1"]);
    const before = fingerprint(fx.pub);
    const lockFile = join(fx.inst.state, "global.lock");
    const holder = await holdLock(fx.inst.state);
    // The holder names itself next to the lock (issue 15 item 4); `node -e` has no script.
    const held = JSON.parse(readFileSync(holderPath(fx.inst.state), "utf8")) as { command: string; pid: number; since: string };
    expect([held.command, held.pid, held.since]).toEqual(["node", holder.pid, expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)]);
    const who = `node, pid ${holder.pid}, since ${held.since}`;

    const busy = (what: string) =>
      `si: error: Cannot ${what}: the global lock ${lockFile} stayed busy for 1 s (held by ${who}; try again later, or raise --lock-timeout)`;
    const cases: [string[], string][] = [
      [["copy-image", "devel", "rc", "mako", "--lock-timeout", "1"], busy("copy image")],
      [["tag-image", "devel", "mako", "1", "T", "--lock-timeout", "1"], busy("tag image")],
      [["set-phased-percentage", "devel", "mako", "1", "5", "--lock-timeout", "1"], busy("set the phased percentage")],
      [["re-sign-indexes", "--lock-timeout", "1"], busy("re-sign the indexes")],
      [["channel", "create", "x", "--lock-timeout", "1"], busy("create channel x")],
      [
        ["shell", "--lock-timeout", "1", "-e", 'pub.create_channel("x")'],
        `si: error: pub.create_channel('x'): ${busy("run the shell's tree operations").slice("si: error: ".length)}`,
      ],
    ];
    for (const [args, message] of cases) {
      const r = fx.inst.si(...args);
      expect([r.status, r.stdout], `si ${args.join(" ")}: ${r.stderr}`).toEqual([1, ""]);
      const lines = r.stderr.trimEnd().split("\n");
      // The wait is announced, then the failure: two lines.
      expect(lines).toEqual([`W: waiting up to 1 s for the global lock ${lockFile} (held by ${who})`, message]);
    }
    // Reads need no lock.
    expect(fx.ok("image", "list", "devel", "mako")).toBe("full 1: 2 files [u=1,version=1]\n");

    const r = fx.inst.si("cleanup-tree");
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `Something else holds the global lock (${who}). exiting.\n`, ""]);
    expect(fingerprint(fx.pub)).toEqual(before);

    // A waiting command goes ahead as soon as the holder is gone.
    const child = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", fx.inst.config, "copy-image", "devel", "rc", "mako"], {
      cwd: REPO,
    });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    await stderrShows(child, "W: waiting up to 60 s for the global lock");
    holder.kill("SIGKILL");
    const status = await new Promise<number | null>((resolve) => child.once("close", resolve));
    expect(status).toBe(0);
    expect(stdout).toContain("I: created rc/mako version 1 (full) from devel/mako version 1");
    expect(readIndex(fx, "rc", "mako").images.map((i) => i.version)).toEqual([1]);
    // And the lock is free again afterwards.
    expect((await siAsync(fx.inst, ["cleanup-tree"])).stdout).toBe("I: nothing to clean up\n");
  });

  it("gives a usage error for a bad --lock-timeout", async () => {
    const fx = await adminFixture();
    const r = fx.inst.si("channel", "create", "x", "--lock-timeout", "soon");
    expect(r.status).toBe(2);
    expectOneLineError(r, "argument --lock-timeout: expected a number of seconds >= 0, got 'soon'");
  });
});
