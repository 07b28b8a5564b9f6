/**
 * The published tree over real HTTP and real TLS on 127.0.0.1: what the system-image client
 * and the flashing tools see (client-protocol §2, §10, §11), plus the HTTP semantics of
 * browsers, mirrors and resuming downloaders.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { startServer, type RunningServer } from "../../src/server/start.js";
import { collectingLogger, fetchRaw, makeSite, rawExchange, rawGet, within, type Site, type Target } from "./fixtures.js";

let site: Site;
let server: RunningServer;
let http: Target;
let https: Target;

beforeAll(async () => {
  site = await makeSite();
  // A file outside the tree, and symlinks inside it pointing out and in.
  writeFileSync(join(site.base, "outside.json"), '{"secret": true}');
  symlinkSync("/etc/passwd", join(site.publish, "passwd.json"));
  symlinkSync(join(site.base, "outside.json"), join(site.publish, "pool/outside.json"));
  symlinkSync("../channels.json", join(site.publish, "pool/channels-link.json"));
  symlinkSync("/etc", join(site.publish, "etcdir"));
  writeFileSync(join(site.publish, ".hidden.json"), "{}");
  writeFileSync(join(site.publish, "pool/.tmp-partial.tar.xz"), "partial");
  symlinkSync(".tmp-partial.tar.xz", join(site.publish, "pool/to-temp.tar.xz"));
  server = await startServer(site.config, { address: "127.0.0.1", httpPort: 0, httpsPort: 0, logger: collectingLogger() });
  http = { port: server.httpPort! };
  https = { port: server.httpsPort!, ca: readFileSync(site.config.tls_cert!) };
});

afterAll(async () => {
  await server?.close();
  rmSync(site.base, { recursive: true, force: true });
});

const TYPES: Record<string, string> = {
  "/channels.json": "application/json",
  "/channels.json.asc": "application/pgp-signature",
  "/16.04/devel/mako/index.json": "application/json",
  "/gpg/image-signing.tar.xz": "application/x-xz",
  "/pool/ubports-0123abcd.tar.xz": "application/x-xz",
  "/pool/ubports-0123abcd.tar.xz.asc": "application/pgp-signature",
  "/pool/small.bin": "application/octet-stream",
};

describe.each([
  ["HTTP", () => http],
  ["HTTPS", () => https],
])("%s: HEAD then GET, as the client does", (_name, target) => {
  it.each(Object.keys(TYPES))("%s", async (path) => {
    const head = await fetchRaw(target(), "HEAD", path);
    const get = await fetchRaw(target(), "GET", path);
    const want = site.files[path];
    expect(head.status).toBe(200);
    expect(get.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(get.body.equals(want)).toBe(true);
    for (const r of [head, get]) {
      expect(r.headers["content-length"]).toBe(String(want.length));
      expect(r.headers["content-type"]).toBe(TYPES[path]);
      expect(r.headers["accept-ranges"]).toBe("bytes");
      expect(r.headers["content-encoding"]).toBeUndefined();
    }
    const same = ["etag", "last-modified", "cache-control", "content-type", "content-length"];
    for (const h of same) expect(head.headers[h], h).toBe(get.headers[h]);
  });
});

describe("paths", () => {
  it("serves //pool/x like /pool/x (the UBports installer concatenates base + path)", async () => {
    for (const target of ["//pool/ubports-0123abcd.tar.xz", "///pool//ubports-0123abcd.tar.xz"]) {
      const r = await fetchRaw(http, "GET", target);
      expect(r.status).toBe(200);
      expect(r.body.equals(site.files["/pool/ubports-0123abcd.tar.xz"])).toBe(true);
    }
    const r = await fetchRaw(https, "HEAD", "//channels.json.asc");
    expect(r.status).toBe(200);
  });

  it("sends the same bytes on HTTP and HTTPS", async () => {
    for (const path of Object.keys(TYPES)) {
      const [a, b] = await Promise.all([fetchRaw(http, "GET", path), fetchRaw(https, "GET", path)]);
      expect(a.body.equals(b.body), path).toBe(true);
      expect(a.headers.etag).toBe(b.headers.etag);
    }
  });

  it("answers a directory, the root and a missing file with 404, also for HEAD", async () => {
    for (const path of ["/pool", "/pool/", "/", "/16.04/devel/mako", "/missing.json", "/pool/nope.tar.xz"]) {
      expect((await fetchRaw(http, "GET", path)).status, path).toBe(404);
      const head = await fetchRaw(http, "HEAD", path);
      expect(head.status, path).toBe(404);
      expect(head.body.length).toBe(0);
    }
  });

  it("answers other methods with 405 and Allow: GET, HEAD", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const r = await fetchRaw(http, method, "/channels.json");
      expect(r.status, method).toBe(405);
      expect(r.headers.allow).toBe("GET, HEAD");
    }
  });

  it("keeps files at their sizes, the empty file included", async () => {
    const r = await fetchRaw(http, "GET", "/pool/empty.bin");
    expect(r.status).toBe(200);
    expect(r.headers["content-length"]).toBe("0");
  });
});

describe("security: nothing outside publish_path, no hidden files", () => {
  const traversal = [
    "/../outside.json",
    "/pool/../../outside.json",
    "/%2e%2e/outside.json",
    "/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
    "/pool/%2e%2e/%2e%2e/outside.json",
    "/pool%2f..%2f..%2foutside.json",
    "/%252e%252e/outside.json",
    "/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "/..%5c..%5coutside.json",
    "/pool\\..\\..\\outside.json",
    "/channels.json%00.asc",
    "/%c0%ae%c0%ae/outside.json",
    "/etc/passwd",
    "//etc/passwd",
    "/passwd.json",
    "/pool/outside.json",
    "/etcdir/passwd",
    "/.hidden.json",
    "/pool/.tmp-partial.tar.xz",
    "/pool/to-temp.tar.xz",
    "/./channels.json",
  ];

  it.each(traversal)("%s → 404", async (target) => {
    const r = await rawExchange(http.port, rawGet(target));
    expect(r.status).toBe(404);
    expect(r.text).not.toContain("root:");
    expect(r.text).not.toContain("secret");
  });

  it("answers a raw NUL byte in the path with an error, never the file", async () => {
    const r = await rawExchange(
      http.port,
      Buffer.concat([
        Buffer.from("GET /channels.json"),
        Buffer.from([0]),
        Buffer.from(".asc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      ]),
    );
    expect([400, 404]).toContain(r.status);
  });

  it("refuses absolute-form targets pointing outside", async () => {
    const r = await rawExchange(http.port, rawGet("http://127.0.0.1/../../outside.json"));
    expect(r.status).toBe(404);
    const ok = await rawExchange(http.port, rawGet("http://127.0.0.1//channels.json"));
    expect(ok.status).toBe(200);
  });

  it("follows a symlink that stays inside the tree", async () => {
    const r = await fetchRaw(http, "GET", "/pool/channels-link.json");
    expect(r.status).toBe(200);
    expect(r.body.equals(site.files["/channels.json"])).toBe(true);
  });

  it("re-checks a path that is replaced by a symlink leading out", async () => {
    const p = join(site.publish, "pool/swap.json");
    writeFileSync(p, '{"inside": 1}');
    expect((await fetchRaw(http, "GET", "/pool/swap.json")).status).toBe(200);
    rmSync(p);
    symlinkSync(join(site.base, "outside.json"), p);
    // The old bytes may be served from memory for a moment; the outside file never is.
    const r = await within(1000, "404 for the symlink leading out", async () => {
      const r = await fetchRaw(http, "GET", "/pool/swap.json");
      expect(r.body.toString()).not.toContain("secret");
      return r.status === 404 ? r : undefined;
    });
    expect(r.body.toString()).not.toContain("secret");
  });
});

describe("updates are visible within a second", () => {
  it("serves the new bytes and a new ETag after an atomic rename, small and large files alike", async () => {
    for (const [name, size] of [
      ["live.json", 50],
      ["live.tar.xz", 600_000],
    ] as const) {
      const p = join(site.publish, "pool", name);
      writeFileSync(p, Buffer.alloc(size, 1));
      const a = await fetchRaw(http, "GET", `/pool/${name}`);
      writeFileSync(p + ".new", Buffer.alloc(size + 1, 2));
      renameSync(p + ".new", p);
      const b = await within(1000, `new ${name}`, async () => {
        const r = await fetchRaw(http, "GET", `/pool/${name}`);
        return r.body.length === size + 1 ? r : undefined;
      });
      expect(a.body.length).toBe(size);
      expect(b.body.length).toBe(size + 1);
      expect(b.body[0]).toBe(2);
      expect(b.headers.etag).not.toBe(a.headers.etag);
    }
  });

  it("serves a file that appears after startup, in a new directory", async () => {
    mkdirSync(join(site.publish, "newchan/mako"), { recursive: true });
    writeFileSync(join(site.publish, "newchan/mako/index.json"), "{}");
    expect((await fetchRaw(http, "GET", "/newchan/mako/index.json")).status).toBe(200);
  });
});

describe("caching and ranges", () => {
  const pool = "/pool/ubports-0123abcd.tar.xz";
  const whole = () => site.files[pool];

  it("sets short/no caching for channels.json and index.json, long for pool payloads", async () => {
    expect((await fetchRaw(http, "HEAD", "/channels.json")).headers["cache-control"]).toBe("no-cache");
    expect((await fetchRaw(http, "HEAD", "/channels.json.asc")).headers["cache-control"]).toBe("no-cache");
    expect((await fetchRaw(http, "HEAD", "/16.04/devel/mako/index.json.asc")).headers["cache-control"]).toBe("no-cache");
    expect((await fetchRaw(http, "HEAD", pool)).headers["cache-control"]).toMatch(/max-age=31536000/);
  });

  it("answers If-None-Match and If-Modified-Since with 304 and no body", async () => {
    for (const path of ["/channels.json", pool]) {
      const first = await fetchRaw(https, "GET", path);
      const a = await fetchRaw(https, "GET", path, { "If-None-Match": first.headers.etag! });
      expect(a.status).toBe(304);
      expect(a.body.length).toBe(0);
      expect(a.headers.etag).toBe(first.headers.etag);
      const b = await fetchRaw(https, "GET", path, { "If-Modified-Since": first.headers["last-modified"]! });
      expect(b.status).toBe(304);
      const c = await fetchRaw(https, "GET", path, { "If-None-Match": '"something-else"' });
      expect(c.status).toBe(200);
      expect(c.body.length).toBe(first.body.length);
    }
  });

  it("serves single ranges with 206 and Content-Range, from memory and from disk", async () => {
    for (const path of ["/channels.json", pool]) {
      const file = path === pool ? whole() : site.files[path];
      const r = await fetchRaw(http, "GET", path, { Range: "bytes=10-19" });
      expect(r.status).toBe(206);
      expect(r.headers["content-range"]).toBe(`bytes 10-19/${file.length}`);
      expect(r.headers["content-length"]).toBe("10");
      expect(r.body.equals(file.subarray(10, 20))).toBe(true);
      const tail = await fetchRaw(http, "GET", path, { Range: "bytes=-7" });
      expect(tail.status).toBe(206);
      expect(tail.body.equals(file.subarray(file.length - 7))).toBe(true);
      const open = await fetchRaw(http, "GET", path, { Range: `bytes=${file.length - 3}-` });
      expect(open.body.equals(file.subarray(file.length - 3))).toBe(true);
    }
  });

  it("answers HEAD with a Range like GET, without a body", async () => {
    const r = await fetchRaw(http, "HEAD", pool, { Range: "bytes=0-99" });
    expect(r.status).toBe(206);
    expect(r.headers["content-length"]).toBe("100");
    expect(r.body.length).toBe(0);
  });

  it("answers an unsatisfiable range with 416 and bytes */size", async () => {
    const r = await fetchRaw(http, "GET", pool, { Range: `bytes=${whole().length}-` });
    expect(r.status).toBe(416);
    expect(r.headers["content-range"]).toBe(`bytes */${whole().length}`);
  });

  it("sends the whole file (200) for multiple ranges and for invalid ones", async () => {
    for (const range of ["bytes=0-1,4-5", "bytes=5-1", "lines=1-2"]) {
      const r = await fetchRaw(http, "GET", pool, { Range: range });
      expect(r.status, range).toBe(200);
      expect(r.body.length).toBe(whole().length);
    }
  });

  it("honours If-Range: the range with the current ETag or date, the whole file otherwise", async () => {
    const head = await fetchRaw(http, "HEAD", pool);
    const ok = await fetchRaw(http, "GET", pool, { Range: "bytes=0-9", "If-Range": head.headers.etag! });
    expect(ok.status).toBe(206);
    const byDate = await fetchRaw(http, "GET", pool, { Range: "bytes=0-9", "If-Range": head.headers["last-modified"]! });
    expect(byDate.status).toBe(206);
    const stale = await fetchRaw(http, "GET", pool, { Range: "bytes=0-9", "If-Range": '"0-0"' });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(whole().length);
  });

  it("never compresses, even when asked to", async () => {
    for (const path of ["/channels.json", pool]) {
      const r = await fetchRaw(http, "GET", path, { "Accept-Encoding": "gzip, deflate, br" });
      expect(r.headers["content-encoding"]).toBeUndefined();
      expect(r.headers["content-length"]).toBe(String(r.body.length));
      expect(r.body.equals(path === pool ? whole() : site.files[path])).toBe(true);
    }
  });
});

describe("abuse", () => {
  it("answers a 20 kB URL and a 100 kB header with an error status and keeps serving", async () => {
    const longUrl = await rawExchange(http.port, rawGet("/" + "a".repeat(20_000)));
    expect([414, 431]).toContain(longUrl.status);
    const bigHeader = await rawExchange(http.port, `GET /channels.json HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(100_000)}\r\n\r\n`);
    expect(bigHeader.status).toBe(431);
    const garbage = await rawExchange(http.port, "NOT HTTP AT ALL\r\n\r\n");
    expect(garbage.status).toBe(400);
    expect((await fetchRaw(http, "GET", "/channels.json")).status).toBe(200);
    expect((await fetchRaw(https, "GET", "/channels.json")).status).toBe(200);
  });

  it("keeps serving while 500 idle sockets are open", async () => {
    const idle: Socket[] = [];
    try {
      await Promise.all(
        Array.from(
          { length: 500 },
          (_, i) =>
            new Promise<void>((resolve, reject) => {
              // Half send nothing at all, half a partial request line.
              const s = connect(http.port, "127.0.0.1", () => {
                if (i % 2) s.write("GET /chan");
                resolve();
              });
              s.on("error", reject);
              idle.push(s);
            }),
        ),
      );
      const replies = await Promise.all(Array.from({ length: 20 }, () => fetchRaw(http, "GET", "/channels.json")));
      expect(replies.every((r) => r.status === 200)).toBe(true);
      expect((await fetchRaw(https, "HEAD", "/pool/ubports-0123abcd.tar.xz")).status).toBe(200);
    } finally {
      for (const s of idle) s.destroy();
    }
  });
});
