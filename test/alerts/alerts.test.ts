/**
 * Issue 17, "alert rules shipped and tested": etc/prometheus/si-alerts.yml passes promtool's
 * checks and its unit tests (test/alerts/si-alerts.test.yml), which hold, for every alert, a
 * series that fires and one that must not; and those tests notice when a threshold, a `for`
 * or the job name the rules assume changes.
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { alertNames as allAlerts, promtool, promtoolAsync, RULES, RULE_TESTS } from "./promtool.js";

const rules = readFileSync(RULES, "utf8");
const ruleTests = readFileSync(RULE_TESTS, "utf8");
const alertNames = allAlerts();

/** promtool test rules on the test file, against `rulesText` written to a temporary file. */
async function testRulesText(rulesText: string): Promise<{ status: number | null; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), "si-alerts-"));
  try {
    writeFileSync(join(dir, "rules.yml"), rulesText);
    writeFileSync(join(dir, "tests.yml"), ruleTests.replace("../../etc/prometheus/si-alerts.yml", join(dir, "rules.yml")));
    return await promtoolAsync(["test", "rules", join(dir, "tests.yml")]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("etc/prometheus/si-alerts.yml", () => {
  it("passes promtool check rules", () => {
    const r = promtool(["check", "rules", RULES]);
    expect(r.out).toContain(`SUCCESS: ${alertNames.length} rules found`);
    expect(r.status).toBe(0);
  });

  it("every alert has a severity and names what it is about", () => {
    expect(alertNames).toEqual(
      expect.arrayContaining([
        "SiImportFailing",
        "SiDeviceImportFailing",
        "SiImportStale",
        "SiKeyringExpiringSoon",
        "SiKeyringExpired",
        "SiTreeVerificationFailing",
        "SiTreeVerificationStale",
        "SiMirrorLagging",
        "SiMirrorPushFailing",
        "SiRolloutPaused",
        "SiDown",
        "SiAbsent",
      ]),
    );
    const blocks = rules.split(/^\s*- alert: /m).slice(1);
    expect(blocks).toHaveLength(alertNames.length);
    for (const b of blocks) {
      expect(b, b).toMatch(/severity: (warning|critical)\n/);
      expect(b, b).toMatch(/summary: /);
      expect(b, b).toMatch(/description: /);
    }
  });

  it("passes its unit tests (promtool test rules)", () => {
    const r = promtool(["test", "rules", RULE_TESTS]);
    expect(r.out).toContain("SUCCESS");
    expect(r.status).toBe(0);
  });

  it("the unit tests hold, for every alert, a case that fires and one that must not", () => {
    const cases = [...ruleTests.matchAll(/alertname: (\S+)\n\s*exp_alerts:(.*)\n/g)].map((m) => ({
      alert: m[1],
      quiet: m[2].trim() === "[]",
    }));
    for (const name of alertNames) {
      expect(cases, `${name} fires somewhere`).toContainEqual({ alert: name, quiet: false });
      expect(cases, `${name} stays quiet somewhere`).toContainEqual({ alert: name, quiet: true });
    }
    expect(new Set(cases.map((c) => c.alert))).toEqual(new Set(alertNames));
  });

  it("the unit tests fail when a threshold, a hold time or the job name changes", { timeout: 600_000 }, async () => {
    // The copy in a temporary directory passes unchanged, so each failure below is the change's.
    expect((await testRulesText(rules)).status).toBe(0);
    const changes: [string, string][] = [
      ["si_import_consecutive_failures >= 3", "si_import_consecutive_failures >= 2"],
      ["expr: si_device_consecutive_failed_imports >= 3", "expr: si_device_consecutive_failed_imports >= 4"],
      ["> 24 * 3600)", "> 23 * 3600)"],
      ["        for: 1h\n", ""],
      ["        for: 24h\n", "        for: 23h\n"],
      ["< 30 * 86400 > 0", "< 32 * 86400 > 0"],
      ["si_keyring_expiry_timestamp_seconds <= time()", "si_keyring_expiry_timestamp_seconds <= time() - 7200"],
      ["si_keyring_readable == 0", "si_keyring_readable < 0"],
      ["si_tree_verification_ok == 0", "si_tree_verification_ok != 1 and si_tree_verification_ok > 5"],
      ["> 26 * 3600)", "> 25 * 3600)"],
      ["and on (instance) (si_scheduler_enabled == 1)", ""],
      ["si_mirror_lag_seconds > 0\n        for: 2h", "si_mirror_lag_seconds > 0\n        for: 1h30m"],
      ["si_mirror_lag_seconds > 0\n", "si_mirror_lag_seconds > 1000\n"],
      ["si_mirror_last_push_success == 0", "si_mirror_last_push_success == 2"],
      ["si_rollout_paused == 1", "si_rollout_paused == 2"],
      ['expr: up{job="system-image"} == 0', 'expr: up{job="si"} == 0'],
      ["        for: 5m\n", ""],
      ['absent(up{job="system-image"})', 'absent(up{job="si"})'],
      ["        for: 10m\n", ""],
      ["and on (instance, channel) (si_channel_schedule_enabled == 1)", "and on (instance, channel) (si_channel_schedule_enabled >= 0)"],
      ["(si_channel_schedule_enabled == 1)\n          unless", "(si_channel_schedule_enabled >= 0)\n          unless"],
      ["\n          unless on (instance) (max by (instance) (si_device_consecutive_failed_imports) >= 3)", ""],
    ];
    for (const [from] of changes) expect(rules.split(from), `"${from}" occurs once`).toHaveLength(2);
    // Two promtool runs at a time (two cores).
    const results: { status: number | null; out: string }[] = [];
    const queue = changes.map(
      ([from, to], i) =>
        async () =>
          void (results[i] = await testRulesText(rules.replace(from, to))),
    );
    const worker = async () => {
      for (let job = queue.shift(); job; job = queue.shift()) await job();
    };
    await Promise.all([worker(), worker()]);
    changes.forEach(([from, to], i) => {
      expect(results[i].status, `still passes with ${JSON.stringify(from)} -> ${JSON.stringify(to)}`).not.toBe(0);
      expect(results[i].out).toContain("FAILED");
    });
  });
});
