/**
 * Issue 14.4 as an operator meets it: `si serve` over a tree whose published image-signing
 * keyring has expired logs an error at start and /healthz answers 503 naming the keyring;
 * one expiring within keyring_warn_days (default 30) gets a warning and /healthz stays 200;
 * outside the window, nothing. si_keyring_expiry_timestamp_seconds is unchanged throughout.
 */
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readKeyringTarball } from "../../src/pgp/keyring.js";
import { spawnServe, get, type Serve } from "../helpers/serve-process.js";
import { keyringInstance } from "./keyring-instance.js";
import { parseMetrics } from "./metrics-parse.js";

const SERVE = ["--address", "127.0.0.1", "--http-port", "0", "--https-port", "off", "--admin-port", "0", "--workers", "1", "--no-schedule"];

/** Runs `si serve` until its start-up is over (the scheduler line follows the keyring check). */
async function started(config: string): Promise<{ s: Serve; admin: string }> {
  const s = spawnServe(config, ...SERVE);
  const line = await s.waitFor((l) => l.event === "admin-listening", "the admin listener");
  await s.waitFor((l) => l.event === "scheduler-off", "the end of start-up");
  return { s, admin: String(line.url) };
}

async function stop(s: Serve): Promise<void> {
  s.child.kill("SIGTERM");
  expect(await s.exit).toBe(0);
  expect(s.stderr()).toBe("");
}

const keyringLines = (s: Serve) => s.lines.filter((l) => String(l.event).startsWith("keyring-"));

describe("si serve and an expired or expiring published keyring", () => {
  it("expired image-signing keyring: an error line at start, /healthz 503 with a JSON reason, metrics as before", async () => {
    const { inst } = await keyringInstance({ imageSigningDays: -1 });
    const { meta } = await readKeyringTarball(join(inst.publish, "gpg/image-signing.tar.xz"));
    expect(meta.expiry! * 1000).toBeLessThan(Date.now());
    const { s, admin } = await started(inst.config);
    try {
      const at = new Date(meta.expiry! * 1000).toISOString().replace(".000Z", "Z");
      expect(keyringLines(s)).toEqual([
        expect.objectContaining({
          level: "error",
          event: "keyring-expired",
          keyring: "gpg/image-signing.tar.xz",
          type: "image-signing",
          expiry: at,
          msg: expect.stringMatching(
            new RegExp(
              `^Keyring gpg/image-signing\\.tar\\.xz \\(image-signing\\) expired (1 day|less than a day) ago \\(${at}\\): devices refuse it and every update signed under it; rebuild it with a fresh expiry \\(si generate-keyrings --force, then si keyring publish image-signing\\)$`,
            ),
          ) as string,
        }),
      ]);
      // After the listening lines: start-up order is listeners, then the checks.
      expect(s.lines.findIndex((l) => l.event === "keyring-expired")).toBeGreaterThan(
        s.lines.findIndex((l) => l.event === "admin-listening"),
      );

      const h = await get(new URL("healthz", admin).href);
      expect(h.status).toBe(503);
      const body = JSON.parse(h.body) as Record<string, unknown>;
      expect(body).toEqual({
        status: "error",
        error: `keyring gpg/image-signing.tar.xz expired on ${new Date(meta.expiry! * 1000).toISOString()}: devices refuse it`,
        problems: [
          {
            check: "keyring",
            keyring: "gpg/image-signing.tar.xz",
            type: "image-signing",
            expiry: new Date(meta.expiry! * 1000).toISOString(),
            message: body.error,
          },
        ],
      });
      const m = parseMetrics((await get(new URL("metrics", admin).href)).body);
      expect(
        m.find((x) => x.name === "si_keyring_expiry_timestamp_seconds" && x.labels.keyring === "gpg/image-signing.tar.xz")?.value,
      ).toBe(meta.expiry);
      await stop(s);
    } finally {
      s.child.kill("SIGKILL");
    }
  });

  it("image-signing keyring expiring in 10 days: a warning at start, /healthz 200; keyring_warn_days = 5 silences it", async () => {
    const { inst } = await keyringInstance({ imageSigningDays: 10 });
    const { meta } = await readKeyringTarball(join(inst.publish, "gpg/image-signing.tar.xz"));
    const first = await started(inst.config);
    try {
      expect(keyringLines(first.s)).toEqual([
        expect.objectContaining({
          level: "warn",
          event: "keyring-expiring",
          keyring: "gpg/image-signing.tar.xz",
          days_left: 9,
          msg: expect.stringMatching(
            /^Keyring gpg\/image-signing\.tar\.xz \(image-signing\) expires in 9 days \(\d{4}-\d\d-\d\dT[\d:]+Z\): devices will refuse it then; rebuild it with a fresh expiry \(si generate-keyrings --force, then si keyring publish image-signing\) before that$/,
          ) as string,
        }),
      ]);
      const h = await get(new URL("healthz", first.admin).href);
      expect(h.status).toBe(200);
      expect(JSON.parse(h.body)).toEqual({ status: "ok" });
      await stop(first.s);
    } finally {
      first.s.child.kill("SIGKILL");
    }

    writeFileSync(inst.config, readFileSync(inst.config, "utf8") + "keyring_warn_days = 5\n");
    const second = await started(inst.config);
    try {
      expect(keyringLines(second.s)).toEqual([]);
      const m = parseMetrics((await get(new URL("metrics", second.admin).href)).body);
      expect(
        m.find((x) => x.name === "si_keyring_expiry_timestamp_seconds" && x.labels.keyring === "gpg/image-signing.tar.xz")?.value,
      ).toBe(meta.expiry);
      await stop(second.s);
    } finally {
      second.s.child.kill("SIGKILL");
    }
  });
});
