/**
 * A host cycling User-Agents cannot grow the state database without bound (src/fleet/
 * client-rows.ts; SECURITY.md "Figures fed by unauthenticated requests"): the polling clients
 * stored per channel/device and day stop at the cap, with one warning, and old days go.
 */
import { describe, expect, it } from "vitest";
import { FleetCounter } from "../../src/fleet/store.js";
import { ClientRows } from "../../src/fleet/client-rows.js";
import { openStateDb } from "../../src/state/db.js";
import { tmp } from "../importer/fixtures.js";
import { fleetTree } from "./fixture.js";

describe("stored polling clients", () => {
  it("stop at the cap per channel/device and day, saying so once", async () => {
    const f = await fleetTree();
    const state = tmp("si-fleet-cap-");
    const warnings: string[] = [];
    const counter = new FleetCounter(state, f.pub, { clientsPerDay: 5, flushMs: 3_600_000, warn: (m) => warnings.push(m) });
    try {
      const index = f.indexCopy();
      expect(counter.wants(index)).toBe(true);
      const poll = (i: number) =>
        counter.observe(
          {
            method: "GET",
            path: index,
            status: 200,
            bytes: 100,
            range: null,
            aborted: false,
            remote: "203.0.113.9",
            userAgent: `bot/${i}`,
            time: Date.now(),
          },
          index,
        );
      for (let i = 0; i < 4; i++) poll(i);
      counter.flush();
      for (let i = 4; i < 40; i++) poll(i);
      counter.flush();
      for (let i = 40; i < 50; i++) poll(i);
      counter.flush();
    } finally {
      counter.close();
    }
    const db = openStateDb(state);
    try {
      expect((db.prepare("SELECT COUNT(*) AS n FROM fleet_clients").get() as { n: number }).n).toBe(5);
    } finally {
      db.close();
    }
    expect(warnings.filter((w) => w.includes("reached 5"))).toEqual([
      `Polling clients of devel/mako on ${new Date().toISOString().slice(0, 10)} reached 5: further ones are not recorded (the figure is saturated)`,
    ]);
  });

  it("of days older than the kept window are deleted", () => {
    const db = openStateDb(tmp("si-fleet-prune-"));
    try {
      const rows = new ClientRows(db);
      rows.insert([
        { bucket: "2026-01-01", channel: "c", device: "d", client: "a" },
        { bucket: "2026-03-03", channel: "c", device: "d", client: "a" },
        { bucket: "2026-03-04", channel: "c", device: "d", client: "b" },
      ]);
      rows.prune("2026-05-04"); // keeps 62 days: from 2026-03-03
      expect(db.prepare("SELECT day FROM fleet_clients ORDER BY day").pluck().all()).toEqual(["2026-03-03", "2026-03-04"]);
    } finally {
      db.close();
    }
  });
});
