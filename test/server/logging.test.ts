/**
 * The server's log: one JSON access line per request, and the warnings that make a
 * mis-configured device visible (the client itself silently says "Already up-to-date":
 * client-protocol §3 step 5, §11.9).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { jsonLineLogger, type LogEntry } from "../../src/server/log.js";
import { startServer, type RunningServer } from "../../src/server/start.js";
import {
  CHANNELS,
  collectingLogger,
  eventually,
  fetchRaw,
  makeSite,
  rawExchange,
  rawGet,
  type Collector,
  type Site,
  type Target,
} from "./fixtures.js";

let site: Site;
let server: RunningServer;
let logger: Collector;
let http: Target;

const ua = (device: string, channel: string, build = 7) =>
  `Ubuntu System Image Upgrade Client: device=${device};channel=${channel};build=${build}`;

beforeAll(async () => {
  site = await makeSite();
  logger = collectingLogger();
  server = await startServer(site.config, { address: "127.0.0.1", httpPort: 0, httpsPort: null, logger });
  http = { port: server.httpPort! };
});

afterAll(async () => {
  await server?.close();
  rmSync(site.base, { recursive: true, force: true });
});

/** The access line of the request that carried `marker` in its User-Agent. */
const accessFor = (marker: string) =>
  eventually(() => logger.entries.find((e) => e.event === "access" && String(e.user_agent).includes(marker)), `access line ${marker}`);
const warningsFor = (device: string) => logger.entries.filter((e) => e.level === "warn" && e.device === device);

describe("access log", () => {
  it("writes one entry per request with time, method, path, status, bytes, duration, remote, UA and range", async () => {
    await fetchRaw(http, "GET", "//pool/ubports-0123abcd.tar.xz", { "User-Agent": "marker-1", Range: "bytes=0-99" });
    const e = await accessFor("marker-1");
    expect(e).toMatchObject({
      level: "info",
      event: "access",
      listener: "http",
      method: "GET",
      path: "//pool/ubports-0123abcd.tar.xz",
      status: 206,
      bytes: 100,
      remote: "127.0.0.1",
      user_agent: "marker-1",
      range: "bytes=0-99",
    });
    expect(new Date(e.time as string).toISOString()).toBe(e.time);
    expect(typeof e.duration_ms).toBe("number");
    expect(e.duration_ms as number).toBeGreaterThanOrEqual(0);
    expect(e.aborted).toBeUndefined();
  });

  it("counts the bytes of streamed files and of HEAD (none)", async () => {
    await fetchRaw(http, "GET", "/pool/ubports-0123abcd.tar.xz", { "User-Agent": "marker-2" });
    await fetchRaw(http, "HEAD", "/pool/ubports-0123abcd.tar.xz", { "User-Agent": "marker-3" });
    expect((await accessFor("marker-2")).bytes).toBe(site.files["/pool/ubports-0123abcd.tar.xz"].length);
    expect(await accessFor("marker-3")).toMatchObject({ method: "HEAD", status: 200, bytes: 0, range: null });
  });

  it("marks a download the client abandons as aborted and closes its file", async () => {
    const size = 64 * 1024 * 1024;
    writeFileSync(join(site.publish, "pool/huge.tar.xz"), Buffer.alloc(size, 7));
    const fds = () => readdirSync("/proc/self/fd").length;
    const before = fds();
    await new Promise<void>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: http.port, path: "/pool/huge.tar.xz", agent: false, headers: { "User-Agent": "marker-abort" } },
        (res) => {
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? undefined : reject(err)));
      req.end();
    });
    const e = await accessFor("marker-abort");
    expect(e).toMatchObject({ status: 200, aborted: true });
    expect(e.bytes as number).toBeLessThan(size);
    await eventually(() => (fds() <= before ? true : undefined), "file descriptors back to the count before the download");
  });

  it("logs requests Node rejects before the handler", async () => {
    const before = logger.entries.length;
    await rawExchange(http.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(100_000)}\r\n\r\n`);
    const e = await eventually(() => logger.entries.slice(before).find((x) => x.event === "client-error"), "client-error line");
    expect(e).toMatchObject({ status: 431, code: "HPE_HEADER_OVERFLOW", listener: "http" });
  });

  it("jsonLineLogger splits large batches into whole-line writes of at most 4096 bytes", async () => {
    const chunks: string[] = [];
    const log = jsonLineLogger((lines) => chunks.push(lines));
    for (let i = 0; i < 200; i++) log.log({ level: "info", event: "x", i, pad: "p".repeat(100) });
    log.log({ level: "info", event: "long", pad: "q".repeat(5000) });
    log.flush!();
    expect(chunks.length).toBeGreaterThan(5);
    const all = chunks.flatMap((c) => c.split("\n").map((l) => JSON.parse(l) as LogEntry));
    expect(all.map((e) => e.i ?? e.event)).toEqual([...Array.from({ length: 200 }, (_, i) => i), "long"]);
    for (const c of chunks.slice(0, -1)) expect(Buffer.byteLength(c) + 1).toBeLessThanOrEqual(4096);
  });

  it("jsonLineLogger writes valid JSON lines, batched", async () => {
    const chunks: string[] = [];
    const log = jsonLineLogger((lines) => chunks.push(lines));
    log.log({ level: "info", event: "a", text: 'quote " and\nnewline' });
    log.log({ level: "warn", event: "b" });
    await new Promise((r) => setImmediate(r));
    expect(chunks).toHaveLength(1);
    const lines = chunks[0].split("\n").map((l) => JSON.parse(l) as LogEntry);
    expect(lines.map((l) => l.event)).toEqual(["a", "b"]);
    expect(lines[0].text).toBe('quote " and\nnewline');
    expect(typeof lines[0].time).toBe("string");
  });
});

describe("unknown channel / device warnings", () => {
  it("warns when the client's User-Agent names a device its channel lacks", async () => {
    await fetchRaw(http, "HEAD", "/channels.json", { "User-Agent": ua("flo", "16.04/devel") });
    await fetchRaw(http, "GET", "/channels.json", { "User-Agent": ua("flo", "16.04/devel") });
    await accessFor("device=flo;");
    await eventually(
      () => (logger.entries.filter((e) => e.user_agent === ua("flo", "16.04/devel")).length >= 3 ? true : undefined),
      "GET line",
    );
    const w = warningsFor("flo");
    // HEAD + GET is one client run: one warning.
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({
      level: "warn",
      event: "unknown-device",
      channel: "16.04/devel",
      device: "flo",
      build: "7",
      path: "/channels.json",
    });
    expect(String(w[0].msg)).toContain("Already up-to-date");
  });

  it("warns for an unknown channel, not for a known channel and device", async () => {
    await fetchRaw(http, "GET", "/channels.json", { "User-Agent": ua("hammerhead", "stable") });
    await fetchRaw(http, "GET", "/channels.json", { "User-Agent": ua("grouper", "16.04/stable") });
    await accessFor("device=grouper;");
    await accessFor("device=hammerhead;");
    expect(warningsFor("hammerhead")).toHaveLength(0);
    expect(warningsFor("grouper")).toEqual([expect.objectContaining({ event: "unknown-channel", channel: "16.04/stable" })]);
  });

  it("warns on a 404 below /<channel>/<device>/, naming the problem", async () => {
    await fetchRaw(http, "GET", "/16.04/devel/manta/index.json", { "User-Agent": "installer-1" });
    await fetchRaw(http, "GET", "//16.04/devel/mako/version-99.tar.xz", { "User-Agent": "installer-2" });
    await fetchRaw(http, "GET", "/pool/missing.tar.xz", { "User-Agent": "installer-3" });
    await accessFor("installer-3");
    expect(warningsFor("manta")).toEqual([
      expect.objectContaining({ event: "unknown-device", channel: "16.04/devel", path: "/16.04/devel/manta/index.json" }),
    ]);
    expect(logger.entries.filter((e) => e.level === "warn" && e.path === "/16.04/devel/mako/version-99.tar.xz")).toEqual([
      expect.objectContaining({ event: "missing-file", device: "mako" }),
    ]);
    expect(logger.entries.filter((e) => e.level === "warn" && e.path === "/pool/missing.tar.xz")).toHaveLength(0);
  });

  it("re-reads channels.json when it changes, and survives a malformed or missing one", async () => {
    const file = join(site.publish, "channels.json");
    const doc = {
      ...CHANNELS,
      "16.04/devel": { devices: { ...CHANNELS["16.04/devel"].devices, flo: { index: "/16.04/devel/flo/index.json" } } },
    };
    writeFileSync(file, JSON.stringify(doc, null, 4));
    await fetchRaw(http, "GET", "/channels.json", { "User-Agent": ua("flo", "16.04/devel", 8) });
    await accessFor("build=8");
    expect(warningsFor("flo")).toHaveLength(1); // still only the one from before the change

    writeFileSync(file, "{ not json");
    const bad = await fetchRaw(http, "GET", "/channels.json", { "User-Agent": ua("flo", "16.04/devel", 9) });
    expect(bad.status).toBe(200);
    await accessFor("build=9");
    expect(logger.entries.filter((e) => e.event === "bad-channels-json")).toHaveLength(1);

    rmSync(file);
    const gone = await fetchRaw(http, "GET", "/channels.json", { "User-Agent": ua("flo", "16.04/devel", 10) });
    expect(gone.status).toBe(404);
    await fetchRaw(http, "GET", "/16.04/devel/nexus/index.json", { "User-Agent": "after-removal" });
    await accessFor("after-removal");
    expect(warningsFor("nexus")).toEqual([expect.objectContaining({ event: "missing-file", channel: "16.04/devel" })]);
    expect((await rawExchange(http.port, rawGet("/16.04/devel/mako/index.json"))).status).toBe(200);
  });
});
