/**
 * Issue 15 item 6: `si --version` prints the version in package.json, and /metrics names it
 * in `si_build_info{version=...} 1`, so an operator and a scraper both know which si answers.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { historyStats } from "../../src/dashboard/history-stats.js";
import { renderMetrics } from "../../src/dashboard/metrics.js";
import { RequestCounts } from "../../src/server/request-counts.js";
import { parseMetrics } from "../dashboard/metrics-parse.js";
import { REPO, runSi } from "../helpers/instance.js";

const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

describe("si --version", () => {
  it("prints package.json's version and exits 0, as -V does", () => {
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    for (const flag of ["--version", "-V"]) {
      const r = runSi([flag]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${VERSION}\n`);
      expect(r.stderr).toBe("");
    }
  });

  it("needs no config (it works from any directory)", () => {
    const r = runSi(["--version"], { cwd: "/", env: { SI_CONFIG: "/nonexistent/config" } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it("is listed in si --help", () => {
    expect(runSi(["--help"]).stdout).toMatch(/-V, --version/);
  });
});

describe("si_build_info in /metrics", () => {
  it("is one sample, value 1, labelled with the package version and the Node.js version", () => {
    const text = renderMetrics({
      stats: historyStats([]),
      keyrings: [],
      requests: new RequestCounts().snapshot(),
      verification: null,
      scheduler: null,
    });
    const info = parseMetrics(text).filter((s) => s.name === "si_build_info");
    expect(info).toEqual([{ name: "si_build_info", labels: { version: VERSION, nodejs: process.version }, value: 1 }]);
    expect(text).toContain("# TYPE si_build_info gauge\n");
  });
});
