/**
 * Hostile remotes against the generators' fetcher (src/io/fetch.ts), on a real HTTP server:
 * a redirect loop, a body that drips one byte at a time (it never goes silent long enough
 * for the read timeout), a body over the cap, a body that stops midway, an HTML page.
 * Each ends with an error naming the URL and leaves no downloaded file behind.
 * (404, 500, HTML, truncation and timeouts through a whole import: test/importer/import-failures.)
 */
import { existsSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpFetcher } from "../../src/io/fetch.js";
import { tempDir } from "../helpers/tar-fixtures.js";

let server: Server;
let base = "";
const timers = new Set<NodeJS.Timeout>();

function drip(res: ServerResponse, bytes: number, everyMs: number): void {
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(bytes) });
  let sent = 0;
  const t = setInterval(() => {
    if (res.destroyed || sent >= bytes) {
      clearInterval(t);
      timers.delete(t);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(Buffer.from([0xfd]));
    sent++;
  }, everyMs);
  timers.add(t);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url.startsWith("/loop/")) {
      const n = Number(url.slice(6));
      res.writeHead(302, { location: `/loop/${(n + 1) % 2}` }).end();
    } else if (url === "/drip") drip(res, 1_000_000, 100);
    else if (url === "/huge") {
      res.writeHead(200, { "content-type": "application/octet-stream" }); // no length: chunked
      const chunk = Buffer.alloc(64 << 10, 0xfd);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    } else if (url === "/midway") {
      res.writeHead(200, { "content-length": "100000" });
      res.write(Buffer.alloc(30_000, 0xfd), () => res.destroy());
    } else if (url === "/html") {
      res.writeHead(200, { "content-type": "text/html" }).end(`<!DOCTYPE html><html>${" ".repeat(600)}Not found</html>`);
    } else res.writeHead(404).end();
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  for (const t of timers) clearInterval(t);
  server.closeAllConnections();
  server.close();
});

const opts = { retries: 0, readTimeoutMs: 1000, connectTimeoutMs: 1000 };

describe("a hostile remote", () => {
  it("a redirect loop: too many redirects", async () => {
    const dest = join(tempDir(), "f");
    await expect(httpFetcher.download(`${base}/loop/0`, dest, opts)).rejects.toThrow(`Cannot download ${base}/loop/0: too many redirects`);
    expect(existsSync(dest)).toBe(false);
  });

  it("one byte at a time: refused as too slow once a read-timeout window has passed", async () => {
    const dest = join(tempDir(), "f");
    await expect(httpFetcher.download(`${base}/drip`, dest, opts)).rejects.toThrow(
      new RegExp(`^Cannot download ${base}/drip: too slow: \\d+ bytes in \\d+\\.\\d s \\(less than 1024 bytes/s\\)$`),
    );
    expect(existsSync(dest)).toBe(false);
  });

  it("an endless body: stops at the size cap", async () => {
    const dest = join(tempDir(), "f");
    await expect(httpFetcher.download(`${base}/huge`, dest, { ...opts, maxBytes: 1 << 20 })).rejects.toThrow(
      `Cannot download ${base}/huge: body is larger than the cap of 1048576 bytes`,
    );
    expect(existsSync(dest)).toBe(false);
  });

  it("a body that stops midway: refused, no partial file", async () => {
    const dest = join(tempDir(), "f");
    await expect(httpFetcher.download(`${base}/midway`, dest, opts)).rejects.toThrow(new RegExp(`^Cannot download ${base}/midway: `));
    expect(existsSync(dest)).toBe(false);
  });

  it("an HTML page where an archive was expected", async () => {
    const dest = join(tempDir(), "f");
    await expect(httpFetcher.download(`${base}/html`, dest, { ...opts, expectArchive: true })).rejects.toThrow(
      `Cannot download ${base}/html: the server sent an HTML page`,
    );
    expect(existsSync(dest)).toBe(false);
  });

  it("a text document (monitor, index) that never ends: capped too", async () => {
    await expect(httpFetcher.text(`${base}/huge`, { ...opts, maxBytes: 1 << 20 })).rejects.toThrow("body is larger than the cap");
  });
});
