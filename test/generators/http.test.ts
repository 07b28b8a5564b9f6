import { afterAll, beforeEach, afterEach, describe, expect, it } from "vitest";
import { linkSync, mkdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dumpPyJson } from "../../src/format/pyjson.js";
import { generateFile } from "../../src/generators/index.js";
import {
  cleanupAll,
  expectGenError,
  expectPublished,
  genInstance,
  listTar,
  makeEnv,
  mappedFetcher,
  poolListing,
  readJson,
  routes,
  serve,
  sha256,
  tarOf,
  tree,
  xzTarball,
  type GenInstance,
  type TestServer,
} from "./fixtures.js";

/** The pool without catalogue sidecars (issue 19: written by publishPoolFile for inspected images). */
const imageListing = (g: GenInstance) => poolListing(g).filter((n) => !n.endsWith(".catalogue.gz"));

afterAll(cleanupAll);

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

describe("http generator (test_generate_file_http)", () => {
  const tarball = xzTarball("served\n");
  let g: GenInstance;
  beforeEach(async () => {
    server = await serve({ "/file": tarball });
    // The generators see http://1.2.3.4/...; the bytes come from 127.0.0.1.
    g = await genInstance({ fetcher: mappedFetcher("1.2.3.4", server) });
  });

  it("names the file after the content hash, signs it, caches the version, and finds it again through the legacy lookup", async () => {
    const env = makeEnv(g);
    const path = await generateFile(g.ctx, "http", ["http://1.2.3.4/file"], env);
    const hash = sha256(tarball);
    expect(path).toBe(join(realpathSync(g.config.publish_path), `pool/http-${hash}.tar.xz`));
    expect(readFileSync(path!).equals(tarball)).toBe(true);
    expect(env.version_detail).toEqual([`http=${hash}`]);
    expectPublished(g, path!);
    expect(readFileSync(join(g.pool, `http-${hash}.json`), "utf8")).toBe(
      dumpPyJson({
        generator: "http",
        url: "http://1.2.3.4/file",
        version: hash,
        version_detail: `http=${hash}`,
        // The owner record (pool-owner.ts): who made it, from what.
        origin: { generator: "http", channel: "test", device: "test", url: "http://1.2.3.4/file", name: "http", version: hash },
      }),
    );
    expect(g.ctx.checksums.get(path!)).toEqual({ sha256: hash, size: tarball.length });
    expect(imageListing(g)).toEqual([`http-${hash}.json`, `http-${hash}.json.asc`, `http-${hash}.tar.xz`, `http-${hash}.tar.xz.asc`]);
    expect(server.hitsOf("/file")).toBe(1);

    // Same run: the cached version finds the file by its legacy name, without a download.
    const mtime = statSync(path!).mtimeMs;
    const env2 = makeEnv(g);
    expect(await generateFile(g.ctx, "http", ["http://1.2.3.4/file"], env2)).toBe(path);
    expect(env2.version_detail).toEqual([`http=${hash}`]);
    expect(server.hitsOf("/file")).toBe(1);

    // Next run (cache cleared): downloaded again to learn the hash, then the pool file is reused.
    g.ctx.cache.clear();
    const env3 = makeEnv(g);
    expect(await generateFile(g.ctx, "http", ["http://1.2.3.4/file", "name=http"], env3)).toBe(path);
    expect(env3.version_detail).toEqual([`http=${hash}`]);
    expect(server.hitsOf("/file")).toBe(2);
    expect(statSync(path!).mtimeMs).toBe(mtime);
    expect(imageListing(g)).toHaveLength(4); // the temporary download is gone
  });

  it("names the file sha256('<url>:<monitor value>') and caches the monitor value", async () => {
    server.routes.set("/monitor", "42\n");
    const env = makeEnv(g);
    const path = await generateFile(g.ctx, "http", ["http://1.2.3.4/file", "monitor=http://1.2.3.4/monitor"], env);
    // The name the reference's tests assert (§5.4.5).
    const hash = "f09815f899863cb369f2a12fa6b29ce8bca0d4a5cef1809ce82af09d41e2f5af";
    expect(path).toBe(join(realpathSync(g.config.publish_path), `pool/http-${hash}.tar.xz`));
    expect(env.version_detail).toEqual(["http=42"]);
    expectPublished(g, path!);
    expect(readJson(join(g.pool, `http-${hash}.json`))).toEqual({
      generator: "http",
      url: "http://1.2.3.4/file",
      version: "42",
      version_detail: "http=42",
      origin: { generator: "http", channel: "test", device: "test", url: "http://1.2.3.4/file", name: "http", version: "42" },
    });
    expect(g.ctx.cache.get("http_http://1.2.3.4/file")).toBe("42");

    const env2 = makeEnv(g);
    expect(await generateFile(g.ctx, "http", ["http://1.2.3.4/file", "monitor=http://1.2.3.4/monitor"], env2)).toBe(path);
    expect(env2.version_detail).toEqual(["http=42"]);
    expect([server.hitsOf("/monitor"), server.hitsOf("/file")]).toEqual([1, 1]);

    // A new run asks the monitor again, and reuses the file without downloading it.
    g.ctx.cache.clear();
    expect(await generateFile(g.ctx, "http", ["http://1.2.3.4/file", "monitor=http://1.2.3.4/monitor"], makeEnv(g))).toBe(path);
    expect([server.hitsOf("/monitor"), server.hitsOf("/file")]).toEqual([2, 1]);
  });

  it("reuses a legacy pool/<name>-<version>.tar.xz, with its sidecar's version_detail", async () => {
    server.routes.set("/monitor", "  43  ");
    writeFileSync(join(g.config.publish_path, "seed.tar.xz"), tarball);
    mkdirSync(g.pool);
    linkSync(join(g.config.publish_path, "seed.tar.xz"), join(g.pool, "rootfs-43.tar.xz"));
    // A sidecar the reference wrote (no owner record): its legacy fields show the same source.
    writeFileSync(
      join(g.pool, "rootfs-43.json"),
      dumpPyJson({ generator: "http", url: "http://1.2.3.4/file", version: "43", version_detail: "rootfs=legacy" }),
    );
    const env = makeEnv(g);
    const path = await generateFile(g.ctx, "http", ["http://1.2.3.4/file", "monitor=http://1.2.3.4/monitor,name=rootfs"], env);
    expect(path).toBe(join(realpathSync(g.pool), "rootfs-43.tar.xz"));
    expect(env.version_detail).toEqual(["rootfs=legacy"]);
    expect(server.hitsOf("/file")).toBe(0);
  });

  it.each<[string, object | null, string]>([
    [
      "a legacy sidecar of another URL",
      { generator: "http", url: "http://other/file", version: "43", version_detail: "rootfs=43" },
      "made by http from http://other/file (a sidecar without an owner record)",
    ],
    [
      "a sidecar that says nothing of its source",
      { version_detail: "rootfs=43" },
      "made by an unknown generator (a sidecar without an owner record)",
    ],
    ["no sidecar", null, "made by an unknown source (it has no sidecar)"],
    [
      "a file another channel imported from a remote upstream",
      {
        generator: "http",
        url: "http://1.2.3.4/file",
        version: "43",
        version_detail: "rootfs=43",
        origin: { generator: "remote-system-image", channel: "a", device: "mako", url: "http://up/pool/rootfs-43.tar.xz" },
      },
      "made by remote-system-image from http://up/pool/rootfs-43.tar.xz for channel a/mako",
    ],
  ])("does not reuse pool/<name>-<version>.tar.xz made from another source: %s", async (_what, sidecar, made) => {
    server.routes.set("/monitor", "43");
    writeFileSync(join(g.config.publish_path, "seed.tar.xz"), tarball);
    mkdirSync(g.pool);
    linkSync(join(g.config.publish_path, "seed.tar.xz"), join(g.pool, "rootfs-43.tar.xz"));
    if (sidecar) writeFileSync(join(g.pool, "rootfs-43.json"), dumpPyJson(sidecar as never));
    const env = makeEnv(g);
    await expectGenError(
      generateFile(g.ctx, "http", ["http://1.2.3.4/file", "monitor=http://1.2.3.4/monitor,name=rootfs"], env),
      `pool file ${join(realpathSync(g.pool), "rootfs-43.tar.xz")} belongs to another source: it was ${made}`,
      "and this is http from http://1.2.3.4/file version 43 for channel test/test",
    );
    expect(env.version_detail).toEqual([]);
    expect(server.hitsOf("/file")).toBe(0);
  });

  it("refuses a monitor value that would inject into version_detail, naming the monitor and key", async () => {
    server.routes.set("/monitor", "7,tag=EVIL");
    const env = makeEnv(g);
    await expectGenError(
      generateFile(g.ctx, "http", ["http://1.2.3.4/file", "monitor=http://1.2.3.4/monitor,name=img"], env),
      'the version_detail from http://1.2.3.4/monitor: version_detail item "img=7,tag=EVIL" (key "img"): the value has a reserved character ","',
    );
    expect(imageListing(g)).toEqual([]);
  });

  it.each<[string, () => void, (string | RegExp)[]]>([
    ["the file is missing (404)", () => server.routes.delete("/file"), ["Cannot download http://127.0.0.1", "/file: HTTP 404"]],
    ["the server fails (500)", () => server.routes.set("/file", routes.status(500)), ["/file: HTTP 500"]],
    ["the server sends an HTML page", () => server.routes.set("/file", routes.html()), ["the server sent an HTML page"]],
    [
      "the body is shorter than its Content-Length",
      () => server.routes.set("/file", routes.truncated(tarball)),
      ["/file: other side closed"],
    ],
    ["the body stalls (timeout)", () => server.routes.set("/file", routes.stalled(tarball)), ["timed out while reading the body"]],
    ["the server never answers (timeout)", () => server.routes.set("/file", routes.silent()), ["timed out waiting for the response"]],
    ["the server redirects in a loop", () => server.routes.set("/file", routes.redirectLoop("/file")), ["/file: too many redirects"]],
    [
      "the file is gzip, not xz",
      () => server.routes.set("/file", tarOf(tree({ a: "b" }), "gzip")),
      ["is not a xz file but gzip (a gzip'd rootfs needs http-cdimage)"],
    ],
    [
      "the file is a plain tar, not xz",
      () => server.routes.set("/file", tarOf(tree({ a: "b" }), "none")),
      ["is not a xz file but uncompressed data"],
    ],
  ])("fails when %s, leaving nothing in the pool", async (_what, setup, parts) => {
    setup();
    const env = makeEnv(g);
    await expectGenError(generateFile(g.ctx, "http", ["http://1.2.3.4/file"], env), "Cannot generate http for test/test: ", ...parts);
    expect(env.version_detail).toEqual([]);
    expect(imageListing(g)).toEqual([]);
    expect(g.ctx.cache.size).toBe(0);
  });

  it("fails when the body is larger than the size cap", async () => {
    g.ctx.fetchOptions = { ...g.ctx.fetchOptions, maxBytes: 100 };
    await expectGenError(generateFile(g.ctx, "http", ["http://1.2.3.4/file"], makeEnv(g)), "is more than the cap of 100");
    expect(imageListing(g)).toEqual([]);
  });

  it.each<[string, () => void, string]>([
    ["does not answer (timeout)", () => server.routes.set("/monitor", routes.silent()), "monitor failed: Cannot download http://127.0.0.1"],
    ["fails (404)", () => server.routes.delete("/monitor"), "HTTP 404"],
    [
      "answers several lines",
      () => server.routes.set("/monitor", "1\n2\n"),
      "invalid monitor value from http://1.2.3.4/monitor: 2 lines, expected one",
    ],
    ["answers nothing", () => server.routes.set("/monitor", " \n"), "invalid monitor value from http://1.2.3.4/monitor: the body is empty"],
    ["answers a path", () => server.routes.set("/monitor", "../x"), "invalid monitor value"],
  ])("fails when the monitor %s, without downloading", async (_what, setup, part) => {
    setup();
    const env = makeEnv(g);
    await expectGenError(
      generateFile(g.ctx, "http", ["http://1.2.3.4/file", "monitor=http://1.2.3.4/monitor"], env),
      "Cannot generate http for test/test: ",
      part,
    );
    expect(server.hitsOf("/file")).toBe(0);
    expect(env.version_detail).toEqual([]);
    expect(imageListing(g)).toEqual([]);
  });
});

describe("http-cdimage generator", () => {
  it("repacks a gzip'd rootfs with the Android entries whatever the product", async () => {
    const dir = tree({ "SWAP.swap": "swap", "etc/mtab": "x", "etc/os-release": "ubports\n" });
    symlinkSync("os-release", join(dir, "etc/issue"));
    const rootfs = tarOf(dir, "gzip", ["SWAP.swap", "etc"]);
    server = await serve({ "/rootfs.tar.gz": rootfs, "/version": "20220102-1\n" });
    const g = await genInstance();
    const url = `${server.url}/rootfs.tar.gz`;
    const env = makeEnv(g);
    const path = await generateFile(g.ctx, "http-cdimage", [url, `monitor=${server.url}/version,name=ubports,product=core`], env);
    const hash = sha256(`${url}:20220102-1`);
    expect(path).toBe(join(realpathSync(g.config.publish_path), `pool/ubports-${hash}.tar.xz`));
    expect(env.version_detail).toEqual(["ubports=20220102-1"]);
    expectPublished(g, path!);
    const sidecar = readJson(join(g.pool, `ubports-${hash}.json`));
    expect(sidecar).toMatchObject({ generator: "cdimage-ubports", url, version: "20220102-1", version_detail: "ubports=20220102-1" });
    expect(Object.keys(sidecar).sort()).toEqual(["generator", "origin", "rootfs_path", "url", "version", "version_detail"]);
    expect(sidecar.origin).toEqual({
      generator: "http-cdimage",
      channel: "test",
      device: "test",
      url,
      name: "ubports",
      version: "20220102-1",
    });

    const byName = new Map(listTar(path!).map((m) => [m.name, m]));
    expect(byName.has("system/SWAP.swap")).toBe(false);
    expect(byName.get("system/etc/issue")).toMatchObject({ type: "l", link: "os-release" });
    expect(byName.get("system/etc/mtab")).toMatchObject({ type: "l", link: "/proc/mounts" });
    expect(byName.has("system/android")).toBe(true);
    expect(byName.get("system/system")).toMatchObject({ type: "l", link: "/android/system" });
    expect(byName.has("system/writable")).toBe(true);
    expect(byName.has("system/userdata")).toBe(false);
    expect(imageListing(g)).toHaveLength(4);
  });

  it("names the file after the gzip's content hash without a monitor, and refuses an xz download", async () => {
    const rootfs = tarOf(tree({ "etc/a": "a" }), "gzip");
    server = await serve({ "/rootfs.tar.gz": rootfs, "/rootfs.tar.xz": xzTarball() });
    const g = await genInstance();
    const env = makeEnv(g);
    const path = await generateFile(g.ctx, "http-cdimage", [`${server.url}/rootfs.tar.gz`], env);
    expect(path).toMatch(new RegExp(`/pool/http-cdimage-${sha256(rootfs)}\\.tar\\.xz$`));
    expect(env.version_detail).toEqual([`http-cdimage=${sha256(rootfs)}`]);
    expect(byNames(path!)).toContain("system/userdata");
    await expectGenError(generateFile(g.ctx, "http-cdimage", [`${server.url}/rootfs.tar.xz`], makeEnv(g)), "is not a gzip file but xz");
  });
});

const byNames = (path: string) => listTar(path).map((m) => m.name);
