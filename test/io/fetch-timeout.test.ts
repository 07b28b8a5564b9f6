/**
 * A hung or absent build server costs seconds, not minutes (issue 15 item 7). Real servers
 * on 127.0.0.1: one that accepts connections and never answers, and a port where nothing
 * listens (connection refused). The assertions count attempts (connections the server saw)
 * rather than time; the only clock involved is the test's own timeout, which a fetcher still
 * waiting out the long no-progress timeout (600 s here) cannot meet.
 */
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { HostMemory, httpFetcher } from "../../src/io/fetch.js";
import { Tree } from "../../src/tree/index.js";
import { runSiAsync } from "../helpers/instance.js";
import { standardInstance } from "../importer/fixtures.js";

const LONG = 600_000;
const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  // close() waits for open connections: a silent server's are ended here.
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function listen(server: Server, port = 0): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return (server.address() as { port: number }).port;
}

/** Accepts, reads the request, never answers. `count()` = connections accepted. */
async function silentServer(): Promise<{ url: string; count: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    sockets.push(s);
    s.on("data", () => {});
    s.on("error", () => {});
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, count: () => n };
}

/** A port on which nothing listens (a server opened there once and closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  servers.splice(servers.indexOf(s), 1);
  await new Promise((r) => s.close(r));
  return port;
}

const dir = () => mkdtempSync(join(tmpdir(), "si-fetch-timeout-"));

describe("build server timeouts (issue 15 item 7)", () => {
  it("no answer: the short first-byte timeout ends each attempt, not the no-progress one; later files of the run get one attempt", async () => {
    const srv = await silentServer();
    const hosts = new HostMemory();
    const opts = { retries: 2, retryDelayMs: 10, connectTimeoutMs: 300, readTimeoutMs: LONG, hosts };
    const d = dir();
    await expect(httpFetcher.download(`${srv.url}/rootfs.tar.xz`, join(d, "a"), opts)).rejects.toThrow(
      /Cannot download http:\/\/127\.0\.0\.1:\d+\/rootfs\.tar\.xz: timed out waiting for the response \(after 3 attempts\)$/,
    );
    expect(srv.count()).toBe(3);
    // The next file from the same host in the same run: one attempt, and it says why.
    await expect(httpFetcher.text(`${srv.url}/device.version`, opts)).rejects.toThrow(
      `Cannot download ${srv.url}/device.version: timed out waiting for the response (1 attempt: ${srv.url} did not answer earlier in this run)`,
    );
    expect(srv.count()).toBe(4);
    // The next run starts afresh.
    await expect(httpFetcher.text(`${srv.url}/device.version`, { ...opts, hosts: new HostMemory() })).rejects.toThrow(/after 3 attempts/);
    expect(srv.count()).toBe(7);
    rmSync(d, { recursive: true, force: true });
  }, 60_000);

  it("refused: not retried, and the host is not asked again for the next file of the run (even once it listens)", async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}`;
    const hosts = new HostMemory();
    const opts = { retries: 2, retryDelayMs: 10, connectTimeoutMs: 5_000, readTimeoutMs: LONG, hosts };
    await expect(httpFetcher.text(`${url}/rootfs.version`, opts)).rejects.toThrow(
      `Cannot download ${url}/rootfs.version: connection refused (not retried; ${url} is not asked again in this run)`,
    );
    // The build server comes up on that port: this run still does not connect to it.
    let connections = 0;
    const server = createHttpServer((_req, res) => res.end("7\n"));
    server.on("connection", (s: Socket) => {
      connections++;
      sockets.push(s);
    });
    await listen(server, port);
    await expect(httpFetcher.text(`${url}/device.version`, opts)).rejects.toThrow(
      `Cannot download ${url}/device.version: ${url} refused the connection earlier in this run (connection refused); not asked again before the next run`,
    );
    expect(connections).toBe(0);
    // The next run does.
    await expect(httpFetcher.text(`${url}/device.version`, { ...opts, hosts: new HostMemory() })).resolves.toBe("7\n");
    expect(connections).toBe(1);
  });

  it("a body may pause longer than the first-byte timeout: that is the no-progress timeout's job", async () => {
    const chunk = Buffer.alloc(512, 0x61);
    const server = createHttpServer((_req, res) => {
      res.writeHead(200, { "content-length": chunk.length * 3 });
      res.write(chunk);
      setTimeout(() => res.write(chunk), 1_000);
      setTimeout(() => res.end(chunk), 2_000);
    });
    const port = await listen(server);
    const d = dir();
    const got = await httpFetcher.download(`http://127.0.0.1:${port}/f`, join(d, "f"), {
      retries: 0,
      connectTimeoutMs: 300,
      readTimeoutMs: 30_000,
      hosts: new HostMemory(),
    });
    expect(got.size).toBe(chunk.length * 3);
    expect(readFileSync(join(d, "f")).equals(Buffer.concat([chunk, chunk, chunk]))).toBe(true);
    rmSync(d, { recursive: true, force: true });
  });

  it("import-images: http_connect_timeout bounds the wait for a hung build server, and each run remembers hosts", async () => {
    const srv = await silentServer();
    const inst = await standardInstance(srv.url, {
      files: ["device", "version"],
      global: ["http_connect_timeout = 1", "http_timeout = 600", "http_retries = 2"],
    });
    const tree = new Tree(await loadConfig(inst.config));
    await tree.createDevice("devel", "flo");
    const r = await runSiAsync(["--config", inst.config, "import-images"]);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const errors = r.stderr.trimEnd().split("\n");
    expect(errors).toEqual([
      expect.stringMatching(
        /^si: error: devel\/flo: .*monitor failed: Cannot download .*\/device\.version: timed out waiting for the response \(after 3 attempts\)$/,
      ),
      expect.stringMatching(
        /^si: error: devel\/mako: .*monitor failed: Cannot download .*\/device\.version: timed out waiting for the response \(1 attempt: .* did not answer earlier in this run\)$/,
      ),
    ]);
    expect(srv.count()).toBe(4);

    // Nothing listens any more: the first device's refusal spares the second one's attempt.
    const port = await closedPort();
    writeFileSync(inst.config, readFileSync(inst.config, "utf8").replaceAll(srv.url, `http://127.0.0.1:${port}`));
    const again = await runSiAsync(["--config", inst.config, "import-images"]);
    expect(again.status).toBe(1);
    expect(again.stderr.trimEnd().split("\n")).toEqual([
      expect.stringMatching(/connection refused \(not retried; http:\/\/127\.0\.0\.1:\d+ is not asked again in this run\)$/),
      expect.stringMatching(/refused the connection earlier in this run \(connection refused\); not asked again before the next run$/),
    ]);
  }, 120_000);
});
