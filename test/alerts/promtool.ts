/** promtool (Debian package `prometheus`, 2.42) for the alert and metrics tests. */
import { execFile, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { REPO } from "../helpers/instance.js";

export const RULES = join(REPO, "etc/prometheus/si-alerts.yml");
export const RULE_TESTS = join(REPO, "test/alerts/si-alerts.test.yml");

/** The alert names of etc/prometheus/si-alerts.yml, in order. */
export function alertNames(): string[] {
  return [...readFileSync(RULES, "utf8").matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]);
}

/** Runs promtool; `out` is stdout and stderr together (it reports on either). */
export function promtool(args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync("promtool", args, { encoding: "utf8", input, timeout: 60_000 });
  expect(r.error, "promtool is not installed (apt-get install prometheus)").toBeUndefined();
  return { status: r.status, out: r.stdout + r.stderr };
}

/** The same, without blocking (several at once). */
export function promtoolAsync(args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    execFile("promtool", args, { encoding: "utf8", timeout: 120_000 }, (err, stdout, stderr) => {
      // A number: promtool's exit status; anything else: it did not run (missing, timed out).
      if (!err) resolve({ status: 0, out: stdout + stderr });
      else if (typeof err.code === "number") resolve({ status: err.code, out: stdout + stderr });
      else reject(new Error(`Cannot run promtool ${args.join(" ")}: ${err.message}`));
    });
  });
}

/** `promtool check metrics` on an exposition: exit 0 and no lint problem reported. */
export function expectCleanMetrics(text: string): void {
  const r = promtool(["check", "metrics"], text);
  expect(r.out.trim(), "promtool check metrics").toBe("");
  expect(r.status).toBe(0);
}
