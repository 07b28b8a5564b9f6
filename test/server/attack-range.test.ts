/**
 * Issue 14.1: a header built to make a backtracking parser quadratic must cost about what a
 * normal request costs. The regexes that parsed Range and the client's User-Agent took
 * 0.2–0.4 s of CPU on `bytes=0-` + 16,000 spaces + `x` (a normal request: about 1 ms).
 *
 * The one timing assertion in the server tests, as the issue asks: hostile and normal requests
 * are interleaved in the same test and compared as a ratio of their fastest runs (noise from
 * a loaded machine only adds time, so the minimum is the stable figure). The bound, 20× plus
 * 30 ms, is loose enough for a busy 2-core machine and still ten times below what the
 * quadratic parsers took.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { startServer, type RunningServer } from "../../src/server/start.js";
import { collectingLogger, makeSite, rawExchange, type Site } from "./fixtures.js";

let site: Site;
let server: RunningServer;

beforeAll(async () => {
  site = await makeSite();
  server = await startServer(site.config, { address: "127.0.0.1", httpPort: 0, httpsPort: null, logger: collectingLogger() });
});
afterAll(async () => {
  await server?.close();
  rmSync(site.base, { recursive: true, force: true });
});

const SPACES = " ".repeat(16_000);
const UA = "Ubuntu System Image Upgrade Client: ";
const request = (path: string, header: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${header}\r\nConnection: close\r\n\r\n`;

/** Wall time of one exchange, and its status. */
async function timed(head: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  const r = await rawExchange(server.httpPort!, head);
  return { ms: performance.now() - t0, status: r.status };
}

/** Fastest of `rounds` interleaved runs of each. */
async function fastest(normal: string, hostile: string, rounds = 7): Promise<{ normal: number; hostile: number; statuses: Set<string> }> {
  let n = Infinity;
  let h = Infinity;
  const statuses = new Set<string>();
  await timed(normal); // warm-up: first-request costs (stat, realpath) are not the parser's
  for (let i = 0; i < rounds; i++) {
    const a = await timed(normal);
    const b = await timed(hostile);
    n = Math.min(n, a.ms);
    h = Math.min(h, b.ms);
    statuses.add(`${a.status}/${b.status}`);
  }
  return { normal: n, hostile: h, statuses };
}

describe("hostile headers (issue 14.1)", () => {
  it("a Range of 16,000 spaces is ignored about as fast as a normal Range is served", async () => {
    const r = await fastest(request("/pool/small.bin", "Range: bytes=0-9"), request("/pool/small.bin", `Range: bytes=0-${SPACES}x`));
    // The hostile Range is not a valid range: the whole file (200), as for any invalid Range.
    expect([...r.statuses]).toEqual(["206/200"]);
    expect(r.hostile, `hostile ${r.hostile.toFixed(1)} ms vs normal ${r.normal.toFixed(1)} ms`).toBeLessThan(20 * r.normal + 30);
  });

  it("a User-Agent of 16,000 spaces on /channels.json costs about what a device's does", async () => {
    const device = `User-Agent: ${UA}device=mako;channel=stable;build=1`;
    const hostile = `User-Agent: ${UA}device=a;channel=b;build=${SPACES}x`;
    const r = await fastest(request("/channels.json", device), request("/channels.json", hostile));
    expect([...r.statuses]).toEqual(["200/200"]);
    expect(r.hostile, `hostile ${r.hostile.toFixed(1)} ms vs normal ${r.normal.toFixed(1)} ms`).toBeLessThan(20 * r.normal + 30);
  });
});
