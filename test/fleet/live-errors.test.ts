/**
 * Counting never gets in the way of serving: with a state directory that cannot be created,
 * si serve answers as usual and says once that fleet counting is off.
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "../../src/server/start.js";
import { collectingLogger, eventually, fetchRaw, makeSite, type Site } from "../server/fixtures.js";

describe("fleet counting without a usable state directory", () => {
  let site: Site | undefined;
  let dir: string | undefined;
  afterAll(() => {
    if (site) rmSync(site.base, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("serves every request and warns once", async () => {
    dir = mkdtempSync(join(tmpdir(), "si-fleet-nostate-"));
    writeFileSync(join(dir, "not-a-dir"), "");
    site = await makeSite(`state_path = ${join(dir, "not-a-dir/state")}\n`);
    const logger = collectingLogger();
    const server = await startServer(site.config, { address: "127.0.0.1", httpPort: 0, httpsPort: null, logger });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await fetchRaw({ port: server.httpPort! }, "GET", "/16.04/devel/mako/index.json", { "User-Agent": `ua-${i}` });
        expect(r.status).toBe(200);
      }
      await eventually(() => (logger.entries.filter((e) => e.event === "access").length === 3 ? true : undefined), "access lines");
    } finally {
      await server.close();
    }
    const warnings = logger.entries.filter((e) => e.event === "fleet-counting");
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/^Fleet counting is off: .*(ENOTDIR|EEXIST)/);
  });
});
