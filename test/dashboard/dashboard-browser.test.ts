/**
 * The dashboard in a real browser (headless Debian chromium driven by playwright-core): it
 * shows the fixture's channels, images and failed import on a desktop and on a phone-sized
 * screen without sideways scrolling of the page. Screenshots are kept in test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { prepareOperations, type Operations } from "../../src/dashboard/operations.js";
import { startListeners, type ListenerGroup } from "../../src/server/listener.js";
import { REPO } from "../helpers/instance.js";
import { makeFleetInstance, type FleetFixture } from "./fixture.js";

const ARTIFACTS = join(REPO, "test-artifacts");
const CHROMIUM = "/usr/bin/chromium";

describe("dashboard in headless Chromium", () => {
  let fx: FleetFixture;
  let ops: Operations;
  let admin: ListenerGroup;
  let browser: BrowserContext;
  let profile: string;
  let url: string;

  beforeAll(async () => {
    fx = await makeFleetInstance();
    ops = prepareOperations(fx.config, { logger: { log: () => undefined }, schedule: false, adminPort: 0 });
    admin = await startListeners([ops.listener!], 1000);
    await ops.start();
    url = admin.urls.admin!;
    // A fresh profile each run: nothing cached or remembered from an earlier one.
    profile = mkdtempSync(join(tmpdir(), "si-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await admin?.close();
    ops?.close();
    await fx?.close();
  });

  it("shows the channels, the images and the failed import; screenshot in test-artifacts/dashboard.png", async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1100, height: 900 });
    const res = await page.goto(url);
    expect(res?.status()).toBe(200);
    expect(await page.title()).toBe("system-image.example.net · system-image");

    const channels = page.locator("#channels");
    expect(await channels.locator("h3").first().innerText()).toBe("devel");
    expect(await channels.locator("h4").allInnerTexts()).toEqual([expect.stringMatching(/^bad\b/), expect.stringMatching(/^good\b/)]);
    const good = channels.locator(".device", { has: page.locator("h4", { hasText: /^good/ }) });
    const rows = await good.locator("tbody tr").allInnerTexts();
    expect(rows.map((r) => r.split("\t")[0].trim())).toEqual(["3", "2", "1"]);
    expect(rows[0]).toContain("OTA-7");
    expect(rows[0]).toContain("40 %");
    expect(rows[1]).toContain("from 1");

    const history = page.locator("#history");
    const failed = history.locator("tr.sub.failed");
    expect(await failed.count()).toBe(1);
    expect(await failed.innerText()).toMatch(fx.failure);
    expect(await history.locator("tbody > tr:not(.sub)").count()).toBe(2);
    expect(await page.locator("#keyrings .badge.warn").allInnerTexts()).toEqual([expect.stringMatching(/^(19|20) days left$/)]);
    expect(await page.locator("#chart svg rect.bar").count()).toBe(2);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
    expect(statSync(join(ARTIFACTS, "dashboard.png")).size).toBeGreaterThan(10_000);
  });

  it("fits a phone screen: no sideways scrolling of the page; screenshot in test-artifacts/dashboard-phone.png", async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(url);
    const width = await page.evaluate("document.documentElement.scrollWidth");
    expect(width).toBeLessThanOrEqual(390);
    expect(await page.locator("#history tr.sub.failed").isVisible()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
  });
});
