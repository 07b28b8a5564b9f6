/**
 * Issue 14.4, the parts a start-up check does not show: the expiry check repeats (daily in
 * `si serve`; here every 200 ms through the same option) even with the admin listener off,
 * and /healthz answers 503 while the last tree verification failed, 200 again once a new
 * verification passes. Real HTTP on 127.0.0.1, real tree verification.
 */
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prepareOperations, type Operations } from "../../src/dashboard/operations.js";
import { startListeners, type ListenerGroup } from "../../src/server/listener.js";
import { ask, collectingLogger, keyringInstance } from "./keyring-instance.js";

const waitUntil = async (what: string, cond: () => boolean | Promise<boolean>) => {
  for (let i = 0; i < 1200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe("keyring expiry watch and /healthz", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("logs the expired keyring again on every check while the server runs, with the admin listener off", async () => {
    const { config } = await keyringInstance({ imageSigningDays: -1 });
    const logger = collectingLogger();
    const ops: Operations = prepareOperations(config, { logger, schedule: false, adminPort: null, keyringCheckEveryMs: 200 });
    expect(ops.listener).toBeNull();
    await ops.start();
    cleanup.push(async () => {
      await ops.stop(1000);
      ops.close();
    });
    const expired = () => logger.entries.filter((e) => e.event === "keyring-expired" && e.keyring === "gpg/image-signing.tar.xz");
    // The first one is logged before start() resolves.
    expect(expired()).toHaveLength(1);
    await waitUntil("three checks", () => expired().length >= 3);
    expect(new Set(expired().map((e) => e.msg)).size).toBe(1);
    expect(expired().every((e) => e.level === "error")).toBe(true);
    // Stopping ends the checks (and nothing keeps the process alive meanwhile: the timer is unref'd).
    await ops.stop(1000);
    const n = expired().length;
    await new Promise((r) => setTimeout(r, 500));
    expect(expired().length).toBe(n);
  });

  it("/healthz: 503 naming the failed tree verification, 200 after one that passes", async () => {
    const { config } = await keyringInstance();
    const logger = collectingLogger();
    const ops = prepareOperations(config, { logger, schedule: false, adminPort: 0 });
    const admin: ListenerGroup = await startListeners([ops.listener!], 1000);
    cleanup.push(async () => {
      await ops.stop(1000);
      await admin.close();
      ops.close();
    });
    await ops.start(admin.urls.admin);
    const port = admin.ports.admin;
    const host = `127.0.0.1:${port}`;
    const verify = async () => {
      const before = logger.entries.filter((e) => String(e.msg).startsWith("tree verification: ")).length;
      expect((await ask(port, "POST", "/verify", { Host: host })).status).toBe(303);
      await waitUntil(
        "the verification",
        () => logger.entries.filter((e) => String(e.msg).startsWith("tree verification: ")).length > before,
      );
    };
    expect((await ask(port, "GET", "/healthz", { Host: host })).status).toBe(200);

    // channels.json still parses, but is no longer what its signature covers.
    const file = join(config.publish_path, "channels.json");
    const signed = readFileSync(file, "utf8");
    writeFileSync(file, JSON.stringify(JSON.parse(signed)));
    await verify();
    const h = await ask(port, "GET", "/healthz", { Host: host });
    expect(h.status).toBe(503);
    const body = JSON.parse(h.body) as { status: string; error: string; problems: Record<string, unknown>[] };
    expect(body.status).toBe("error");
    expect(body.problems).toEqual([
      {
        check: "tree-verification",
        started_at: expect.any(String) as string,
        errors: expect.any(Number) as number,
        message: expect.stringMatching(/^tree verification of \S+ failed with [1-9]\d* error\(s\)$/) as string,
      },
    ]);
    expect(body.error).toBe(body.problems[0].message);

    writeFileSync(file, signed);
    await verify();
    const again = await ask(port, "GET", "/healthz", { Host: host });
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toEqual({ status: "ok" });
  });
});
