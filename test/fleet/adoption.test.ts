/**
 * The dashboard's adoption section, from live counts in a real state database: one chart
 * per device, versions cumulated by day, every name escaped.
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfigText } from "../../src/config/load.js";
import { loadAdoption, renderAdoption } from "../../src/dashboard/adoption.js";
import { adoptionSeries } from "../../src/fleet/store.js";
import { openStateDb } from "../../src/state/db.js";

const base = mkdtempSync(join(tmpdir(), "si-fleet-adoption-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("the adoption section", () => {
  const config = parseConfigText(`[global]\nbase_path = ${base}\n`, join(base, "etc/config"));
  const evil = `<script>alert("x")</script>`;

  it("says so when nothing was counted", () => {
    expect(String(renderAdoption(loadAdoption(config)))).toMatch(/No downloads or index polls counted yet/);
  });

  it("draws each device's versions over the days, escaping every name", () => {
    const db = openStateDb(config.state_path);
    const add = db.prepare(
      "INSERT INTO fleet_daily (day, channel, device, version, kind, base, started, completed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    add.run("2026-12-05T10", "devel", "mako", "1", "full", "", 5, 4);
    add.run("2026-12-06T09", "devel", "mako", "2", "full", "", 3, 3);
    add.run("2026-12-06T23", "devel", "mako", "2", "delta", "1", 2, 1);
    add.run("2026-12-07T01", evil, "mako", "7", "full", "", 1, 1);
    db.prepare("INSERT INTO fleet_clients (day, channel, device, client) VALUES (?, ?, ?, ?)").run("2026-12-07", "stable", evil, "abc");
    db.close();

    expect(adoptionSeries(config.state_path, "devel", "mako")).toEqual({
      channel: "devel",
      device: "mako",
      points: [
        { day: "2026-12-05", version: 1, started: 5, completed: 4 },
        { day: "2026-12-06", version: 2, started: 5, completed: 4 },
      ],
    });
    const loaded = loadAdoption(config);
    expect(loaded.series.map((s) => `${s.channel}/${s.device}`)).toEqual([`${evil}/mako`, "devel/mako", `stable/${evil}`]);
    const page = String(renderAdoption(loaded));
    expect(page).not.toContain("<script>");
    expect(page).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    // devel/mako: version 2 climbs from 0 to 4 while version 1 stays at 4; a table of totals.
    expect(page).toMatch(/<polyline points="[^"]+" stroke="#0969da"><title>version 2<\/title>/);
    expect(page).toContain("<td>version 1</td><td>5</td><td>4</td>");
    expect(page).toContain("<td>version 2</td><td>5</td><td>4</td>");
    expect(page).toMatch(/Index polls only, no downloads yet/);
  });

  it("shows why when the database cannot be read", () => {
    writeFileSync(join(base, "a-file"), "");
    const broken = parseConfigText(`[global]\nbase_path = ${base}\nstate_path = ${join(base, "a-file/state")}\n`, join(base, "etc/config"));
    const loaded = loadAdoption(broken);
    expect(loaded.error).toBeDefined();
    expect(String(renderAdoption(loaded))).toMatch(/Cannot read the adoption figures/);
  });
});
