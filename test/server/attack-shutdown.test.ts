/**
 * Issue 14.5: after SIGTERM the server must stop within its grace period whatever state its
 * connections are in. In-flight downloads get the grace period and are then cut; TLS
 * handshakes that never finish, idle keep-alives and requests still sending their headers
 * are closed at once. Before, a stalled handshake held a worker until handshakeTimeout
 * (20 s), so `si serve` took 15 s (the primary's kill) instead of its 10 s.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeSync, ftruncateSync, openSync, rmSync } from "node:fs";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { startServer } from "../../src/server/start.js";
import { spawnServe } from "../helpers/serve-process.js";
import { collectingLogger, fetchRaw, makeSite, type Site } from "./fixtures.js";

let site: Site;
const BIG = "/pool/big.tar.xz";
beforeAll(async () => {
  site = await makeSite();
  const fd = openSync(join(site.publish, BIG), "w");
  ftruncateSync(fd, 256 * 1024 * 1024); // sparse: far more than the kernel buffers
  closeSync(fd);
});
afterAll(() => rmSync(site.base, { recursive: true, force: true }));

/** A record header announcing 512 bytes of ClientHello, and 4 of them. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]);

/** A raw TCP connection that sends `bytes` (maybe nothing) and then nothing more. */
function stalled(port: number, bytes?: Buffer | string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => {
      if (bytes !== undefined) s.write(bytes);
      resolve(s);
    });
    s.on("error", () => undefined);
    s.once("error", reject);
  });
}

const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r())));

/** Every kind of connection that must not hold a stop, on both listeners. */
async function openEverything(http: number, https: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < 5; i++) {
    socks.push(await stalled(https)); // TCP open, no ClientHello
    socks.push(await stalled(https, PARTIAL_CLIENT_HELLO));
    socks.push(await stalled(http)); // connected, no request
    socks.push(await stalled(http, "GET /channels.json HTTP/1.1\r\nHost: x\r\n")); // headers never end
  }
  // An idle keep-alive: one answered request, then silence.
  const idle = await stalled(http, "GET /channels.json HTTP/1.1\r\nHost: x\r\n\r\n");
  await new Promise((r) => idle.once("data", r));
  socks.push(idle);
  return socks;
}

describe("stopping on time (issue 14.5)", () => {
  it("close() cuts a stalled download at the grace period and every other connection at once", async () => {
    const grace = 1_500;
    const server = await startServer(site.config, {
      address: "127.0.0.1",
      httpPort: 0,
      httpsPort: 0,
      logger: collectingLogger(),
      shutdownTimeoutMs: grace,
    });
    const others = await openEverything(server.httpPort!, server.httpsPort!);
    // A download whose client stopped reading: in flight until the grace period ends.
    let status = 0;
    const download = new Promise<void>((resolve) => {
      const req = request({ host: "127.0.0.1", port: server.httpPort, path: BIG, agent: false }, (res) => {
        status = res.statusCode!;
        res.pause();
        res.socket.once("close", () => resolve());
        res.on("error", () => undefined);
      });
      req.on("error", () => resolve());
      req.end();
    });
    while (status === 0) await new Promise((r) => setTimeout(r, 20));

    const t0 = performance.now();
    const stopped = server.close().then(() => performance.now() - t0);
    const othersGone = Promise.all(others.map(closed)).then(() => performance.now() - t0);
    const downloadCut = download.then(() => performance.now() - t0);
    const deadline = new Promise<number>((r) => setTimeout(() => r(Infinity), grace + 8_000));

    // Closed at once: well before the grace period (before: after handshakeTimeout, 20 s).
    expect(await Promise.race([othersGone, deadline])).toBeLessThan(grace);
    // The download had its grace period, then was cut; close() finished with it.
    const cut = await Promise.race([downloadCut, deadline]);
    expect(cut).toBeGreaterThanOrEqual(grace - 50);
    expect(await Promise.race([stopped, deadline])).toBeLessThan(grace + 3_000);
  }, 60_000);

  it("si serve --workers 2 with stalled TLS handshakes and idle sockets open exits 0 at once on SIGTERM", async () => {
    const s = spawnServe(
      join(site.base, "etc/config"),
      "--address",
      "127.0.0.1",
      "--http-port",
      "0",
      "--https-port",
      "0",
      "--workers",
      "2",
      "--no-schedule",
    );
    const socks: Socket[] = [];
    try {
      const portOf = async (name: string) =>
        Number(new URL(String((await s.waitFor((l) => l.event === "listening" && l.listener === name)).url)).port);
      const http = await portOf("http");
      const https = await portOf("https");
      expect((await fetchRaw({ port: http }, "GET", "/channels.json")).status).toBe(200);
      // Enough of each that both workers hold some (round-robin).
      for (let i = 0; i < 2; i++) socks.push(...(await openEverything(http, https)));
      await new Promise((r) => setTimeout(r, 300)); // the workers have accepted them

      const t0 = performance.now();
      s.child.kill("SIGTERM");
      const code = await Promise.race([s.exit, new Promise<"hung">((r) => setTimeout(() => r("hung"), 20_000))]);
      const took = performance.now() - t0;
      // Nothing was in flight, so nothing may wait for the 10 s grace period (before: 15 s,
      // when the primary killed the worker still holding handshakes, and exit status 1).
      expect(code).toBe(0);
      expect(took).toBeLessThan(5_000);
      expect(s.lines.at(-1)).toMatchObject({ event: "stopped" });
    } finally {
      for (const x of socks) x.destroy();
      s.child.kill("SIGKILL");
    }
  }, 60_000);
});
