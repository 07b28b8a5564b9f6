/**
 * Issue 14 item 8: `si config show | head -3` ended in an EPIPE stack trace. Every command
 * that prints must exit quietly, with 141 (128 + SIGPIPE, as a shell reports for `cat` in
 * the same place: src/cli/context.ts), when the reader of its output goes away.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "../helpers/instance.js";

/** A config whose `si config show` prints far more than a pipe holds (64 KiB on Linux). */
function bigConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), "si-epipe-"));
  const names = Array.from({ length: 1500 }, (_, i) => `stable/channel-number-${i}`);
  const sections = names.map((n) => `[channel_${n}]\ntype = manual\n`);
  writeFileSync(join(dir, "config"), ["[global]", `base_path = ${dir}`, `channels = ${names.join(", ")}`, "", ...sections].join("\n"));
  return join(dir, "config");
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  firstLine: string;
  stderr: string;
}

/** Runs si with stdout read by a reader that takes one line and closes its end of the pipe. */
function runIntoHead1(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, "bin/si.js"), ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    let firstLine = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0 && !firstLine) {
        firstLine = buf.slice(0, nl);
        child.stdout.destroy(); // the reader goes away, like `head -1`
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("close", (status, signal) => resolve({ status, signal, firstLine, stderr }));
  });
}

describe("a command whose reader goes away", () => {
  const config = bigConfig();

  it("prints more than a pipe holds, so its reader closes the pipe while it still writes", async () => {
    // Guards the test itself: with less output than the pipe buffer, no write would fail.
    const all = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", config, "config", "show"], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let n = 0;
      child.stdout.on("data", (d: Buffer) => (n += d.length));
      child.on("close", () => resolve(n));
    });
    expect(all).toBeGreaterThan(2 * 65536);
  });

  it("si config show | head -1: exits 141 with nothing on stderr (no EPIPE stack trace)", async () => {
    const r = await runIntoHead1(["--config", config, "config", "show"]);
    expect(r.firstLine).toMatch(/^path: /);
    expect(r.stderr).toBe("");
    expect(r.signal).toBeNull();
    expect(r.status).toBe(141);
  });

  it("si config show --json | head -1: the same for one large write", async () => {
    const r = await runIntoHead1(["--config", config, "config", "show", "--json"]);
    expect(r.firstLine).toBe("{");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(141);
  });

  it("an error line to a closed stderr: exits quietly too", async () => {
    const r = await new Promise<{ status: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", "/nonexistent/config", "config", "show"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stderr.destroy(); // nobody reads errors
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
      child.on("close", (status) => resolve({ status, out }));
    });
    expect(r.out).toBe("");
    expect(r.status).toBe(141);
  });
});
