/**
 * Small files (channels.json, index.json, .asc) are answered from memory (src/server/
 * static-files.ts). What a device must still see: a publish that renames new documents and
 * signatures into place reaches it within a bound (here: 1 s), through the inotify watch and
 * through the periodic re-check each on its own; HEAD and GET agree; a deleted file is a
 * 404; large files are read from disk at every request.
 */
import { describe, expect, it } from "vitest";
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { StaticTreeOptions } from "../../src/server/static-files.js";
import { fetchRaw, useServedSite, within, type Target } from "./fixtures.js";

const fixture = useServedSite();
const serve = fixture.serve;

/** Publishes a new document and signature the way the tree does: temp files, then rename. */
function publish(path: string, doc: string, sig: string): void {
  const file = join(fixture.site.publish, path);
  writeFileSync(`${file}.tmp-new`, doc);
  writeFileSync(`${file}.asc.tmp-new`, sig);
  renameSync(`${file}.tmp-new`, file);
  renameSync(`${file}.asc.tmp-new`, `${file}.asc`);
}

/** GETs `path` until its body is `want` (up to 1 s); returns that response. */
const served = (http: Target, path: string, want: string) =>
  within(1000, `new ${path}`, async () => {
    const r = await fetchRaw(http, "GET", path);
    return r.status === 200 && r.body.toString() === want ? r : undefined;
  });

/** HEAD and GET of `path` carry the same status and headers (client-protocol §2). */
async function expectHeadLikeGet(http: Target, path: string): Promise<void> {
  const head = await fetchRaw(http, "HEAD", path);
  const get = await fetchRaw(http, "GET", path);
  expect(head.status).toBe(get.status);
  expect(head.body.length).toBe(0);
  for (const h of ["etag", "last-modified", "cache-control", "content-type", "content-length", "accept-ranges"]) {
    expect(head.headers[h], `${path} ${h}`).toBe(get.headers[h]);
  }
  expect(get.headers["content-length"]).toBe(String(get.body.length));
}

let version = 0;

describe.each([
  ["default settings", {}],
  // A re-check bound of an hour: only the inotify watch can make the change visible.
  ["the inotify watch alone", { revalidateMs: 3_600_000 }],
  // No watch (as on a file system without inotify): only the periodic re-check can.
  ["the re-check alone", { watch: false, revalidateMs: 50 }],
] as const)("with %s", (_name, options: StaticTreeOptions) => {
  it("serves a new channels.json and channels.json.asc after they are renamed into place", async () => {
    const http = await serve(options);
    // Read both several times: they are in memory now.
    for (let i = 0; i < 3; i++) {
      for (const p of ["/channels.json", "/channels.json.asc"]) expect((await fetchRaw(http, "GET", p)).status).toBe(200);
    }
    const before = await fetchRaw(http, "GET", "/channels.json");
    for (let n = 0; n < 3; n++) {
      version++;
      const doc = `{"version": ${version}}\n`;
      const sig = `signature of version ${version}\n`;
      publish("channels.json", doc, sig);
      const got = await served(http, "/channels.json", doc);
      await served(http, "/channels.json.asc", sig);
      expect(got.headers.etag).not.toBe(before.headers.etag);
      expect(got.headers["content-length"]).toBe(String(doc.length));
      await expectHeadLikeGet(http, "/channels.json");
      await expectHeadLikeGet(http, "/channels.json.asc");
    }
  });

  it("answers 404 once a file is deleted, and serves it again when it comes back", async () => {
    const http = await serve(options);
    const file = join(fixture.site.publish, "pool/gone.json");
    writeFileSync(file, '{"here": 1}');
    for (let i = 0; i < 3; i++) expect((await fetchRaw(http, "GET", "/pool/gone.json")).status).toBe(200);
    unlinkSync(file);
    await within(1000, "404 after delete", async () => {
      const r = await fetchRaw(http, "GET", "/pool/gone.json");
      return r.status === 404 ? r : undefined;
    });
    expect((await fetchRaw(http, "HEAD", "/pool/gone.json")).status).toBe(404);
    writeFileSync(file, '{"here": 2}');
    await served(http, "/pool/gone.json", '{"here": 2}');
  });
});

describe("a directory replaced by rename", () => {
  it("serves the new index.json, though the watch followed the old directory", async () => {
    const http = await serve();
    const dir = join(fixture.site.publish, "stable/flo");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "index.json"), '{"images": [1]}');
    for (let i = 0; i < 3; i++) await served(http, "/stable/flo/index.json", '{"images": [1]}');
    // Renames only: the old directory's watch sees no event at all.
    const next = join(fixture.site.publish, "stable/flo.new");
    mkdirSync(next);
    writeFileSync(join(next, "index.json"), '{"images": [1, 2]}');
    renameSync(dir, join(fixture.site.publish, "stable/flo.old"));
    renameSync(next, dir);
    await served(http, "/stable/flo/index.json", '{"images": [1, 2]}');
    publish("stable/flo/index.json", '{"images": [1, 2, 3]}', "sig 3\n");
    await served(http, "/stable/flo/index.json", '{"images": [1, 2, 3]}');
    await served(http, "/stable/flo/index.json.asc", "sig 3\n");
  });
});

describe("large files", () => {
  it("are read from disk at every request, never from memory", async () => {
    // No watch and an hour's re-check: whatever is in memory stays there.
    const http = await serve({ watch: false, revalidateMs: 3_600_000, smallFileLimit: 64 * 1024 });
    const large = join(fixture.site.publish, "pool/large.tar.xz");
    const small = join(fixture.site.publish, "pool/small.tar.xz");
    for (let round = 1; round <= 3; round++) {
      writeFileSync(`${large}.new`, Buffer.alloc(200_000 + round, round));
      renameSync(`${large}.new`, large);
      writeFileSync(`${small}.new`, Buffer.alloc(1000 + round, round));
      renameSync(`${small}.new`, small);
      const r = await fetchRaw(http, "GET", "/pool/large.tar.xz");
      expect(r.status).toBe(200);
      expect(r.body.equals(Buffer.alloc(200_000 + round, round))).toBe(true);
      await expectHeadLikeGet(http, "/pool/large.tar.xz");
      // The control: a small file in the same setting is the copy read in round 1.
      expect((await fetchRaw(http, "GET", "/pool/small.tar.xz")).body.equals(Buffer.alloc(1001, 1))).toBe(true);
    }
  });
});
