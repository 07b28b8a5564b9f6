/**
 * Issue 13 item 7: a build server that closes the connection after each response made undici 7
 * throw `assert(!this.paused)` from a socket event when our write side was slower than the
 * network, killing `si import-images` (nodejs/undici#5360). Real servers on 127.0.0.1 (a raw
 * socket, python3 -m http.server, nginx with keepalive_timeout 0), a destination that drains
 * slowly (./slow-disk.ts), 20 MiB bodies: every download must succeed with the right bytes.
 * With the old fetcher most runs of this file died with an unhandled AssertionError.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { fetchInternals, httpFetcher } from "../../src/io/fetch.js";
import { slowDisk, type SlowDisk } from "./slow-disk.js";

const SIZE = 20 << 20;
const OPTS = { retries: 0, readTimeoutMs: 20_000 };

/** Bytes that differ everywhere, so a lost, doubled or misplaced chunk changes the sha256. */
function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);
  return b;
}
const BODY = pattern(SIZE);
const SHA = createHash("sha256").update(BODY).digest("hex");

let dir: string;
let disk: SlowDisk;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "si-fetch-close-"));
  disk = slowDisk(dir);
});
afterAll(() => {
  disk?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `n` downloads of `url` in a row into the slow disk; each must be the whole body. */
async function downloadMany(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const seen = disk.next();
    const got = await httpFetcher.download(url, disk.path, OPTS);
    expect(got, `download ${i + 1} of ${n}`).toEqual({ size: SIZE, sha256: SHA });
    expect(await seen, `bytes on disk, download ${i + 1}`).toEqual({ size: SIZE, sha256: SHA });
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

/** Reads the request head, then writes headers, the whole body and FIN in one go. */
function closingServer(body: Buffer): Server {
  return createServer((s: Socket) => {
    let head = "";
    s.on("data", (d) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      s.removeAllListeners("data");
      s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      s.write(body);
      s.end();
    });
    s.on("error", () => {});
  });
}

describe("a raw server: Connection: close, 20 MiB and FIN at once", () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = closingServer(BODY);
    url = `http://127.0.0.1:${await listen(server)}/image.tar.xz`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("raw socket: 50 downloads through a slow disk, every one whole", async () => {
    await downloadMany(url, 50);
  });

  it("with undici's own end handling left to fail, the failure stays one download's error", async () => {
    // Turns off the resume-on-FIN guard, so undici 7 reaches its assertion as before; the guard
    // around the socket's events must turn it into an error of that download only. A 1-byte
    // body buffer pauses the parser after every chunk, the last one included, so (nearly)
    // every download meets the assertion instead of a fraction of them.
    fetchInternals.resumeOnPeerClose = false;
    fetchInternals.bodyHighWater = 1;
    const outcomes: string[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const seen = disk.next();
        try {
          const got = await httpFetcher.download(url, disk.path, OPTS);
          expect(got).toEqual({ size: SIZE, sha256: SHA });
          outcomes.push("ok");
        } catch (err) {
          expect((err as Error).message).toMatch(
            new RegExp(`^Cannot download ${url}: the HTTP client failed on the connection's end: .*assert\\(!this\\.paused\\)`),
          );
          expect((err as Error).name).toBe("GeneratorError");
          outcomes.push("failed");
          execFileSync("mkfifo", [disk.path]); // the failed download removed its partial file
        }
        await seen;
      }
    } finally {
      fetchInternals.resumeOnPeerClose = true;
      fetchInternals.bodyHighWater = 256 * 1024;
    }
    const hit = outcomes.filter((o) => o === "failed").length;
    console.log(`guard off: ${hit} of 10 downloads hit undici's assertion, none crashed`);
    expect(hit).toBeGreaterThan(0); // else this test showed nothing
  });

  it("holds a bounded amount of the body in memory while the disk stalls", async () => {
    // 48 MiB, written piece by piece so we can see when the server can no longer send.
    const big = pattern(48 << 20);
    const want = createHash("sha256").update(big).digest("hex");
    let sent = 0;
    const paced = createServer((s) => {
      s.once("data", () => {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n`);
        let off = 0;
        const more = (): void => {
          while (off < big.length) {
            const piece = big.subarray(off, (off += 256 << 10));
            if (!s.write(piece, () => (sent += piece.length))) return void s.once("drain", more);
          }
          s.end();
        };
        more();
      });
      s.on("error", () => {});
    });
    const port = await listen(paced);
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    try {
      gc();
      const before = process.memoryUsage().arrayBuffers;
      const seen = disk.next({ hold: true });
      const done = httpFetcher.download(`http://127.0.0.1:${port}/big`, disk.path, OPTS);
      // Wait until the server is stuck (its sent count still for a second) or has sent it all.
      let last = -1;
      for (let still = 0; still < 10 && sent < big.length; still = sent === last ? still + 1 : 0) {
        last = sent;
        await new Promise((r) => setTimeout(r, 100));
      }
      gc();
      const held = process.memoryUsage().arrayBuffers - before;
      disk.release();
      expect(await done).toEqual({ size: big.length, sha256: want });
      expect(await seen).toEqual({ size: big.length, sha256: want });
      console.log(`disk stalled: server got ${(sent / 2 ** 20).toFixed(1)} MiB out, fetcher held ${(held / 2 ** 20).toFixed(1)} MiB`);
      expect(held).toBeLessThan(8 << 20);
    } finally {
      paced.close();
    }
  });
});

describe("python3 -m http.server (HTTP/1.0, closes after each response)", () => {
  let py: ChildProcess;
  let url: string;
  beforeAll(async () => {
    const root = join(dir, "py");
    mkdirSync(root);
    writeFileSync(join(root, "image.tar.xz"), BODY);
    py = spawn("python3", ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", root], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      py.stdout!.on("data", (d) => {
        out += d;
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      py.on("exit", (code) => reject(new Error(`python3 -m http.server exited (${code}): ${out}`)));
    });
    url = `http://127.0.0.1:${port}/image.tar.xz`;
  });
  afterAll(() => {
    py?.kill();
  });

  it("python3 http.server: 20 downloads through a slow disk, every one whole", async () => {
    await downloadMany(url, 20);
  });
});

describe("nginx with keepalive_timeout 0", () => {
  let nginx: ChildProcess;
  let url: string;
  beforeAll(async () => {
    const prefix = join(dir, "nginx");
    const root = join(prefix, "www");
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, "image.tar.xz"), BODY);
    const probe = createServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${prefix}/${t};`).join(" ");
    writeFileSync(
      join(prefix, "nginx.conf"),
      `${process.getuid?.() === 0 ? "user root; " : ""}daemon off; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log; worker_processes 1;\n` +
        `events {}\nhttp { access_log off; ${temps} keepalive_timeout 0;\n` +
        `  server { listen 127.0.0.1:${port}; root ${root}; } }\n`,
    );
    execFileSync("nginx", ["-t", "-q", "-p", prefix, "-c", join(prefix, "nginx.conf")]);
    nginx = spawn("nginx", ["-p", prefix, "-c", join(prefix, "nginx.conf")], { stdio: "ignore" });
    url = `http://127.0.0.1:${port}/image.tar.xz`;
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = createConnection(port)
          .on("connect", () => (s.destroy(), resolve(true)))
          .on("error", () => resolve(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(() => {
    nginx?.kill("SIGQUIT");
  });

  it("nginx: 20 downloads through a slow disk, every one whole", async () => {
    await downloadMany(url, 20);
  });
});
