/**
 * A commit caught between its two renames (src/server/pair-settle.ts): channels.json is new,
 * channels.json.asc still the previous commit's. A device asking in that gap must not get the
 * new document with the old signature on both of its tries (client-protocol §3 step 4), so
 * `si serve` holds the request until the signature follows, or gives up after a bound (a
 * writer killed between the two renames must not stall every later request).
 */
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fetchRaw, useServedSite, type Target } from "./fixtures.js";

const fixture = useServedSite();
const serve = fixture.serve;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Renames a new version of `path` into place (the first of installPair's two renames). */
function renameIn(path: string, data: string): void {
  const file = join(fixture.site.publish, path);
  writeFileSync(`${file}.tmp-new`, data);
  renameSync(`${file}.tmp-new`, file);
}

/** A GET and when it was answered (ms after it was sent). */
async function timedGet(http: Target, path: string): Promise<{ body: string; ms: number }> {
  const start = performance.now();
  const r = await fetchRaw(http, "GET", path);
  expect(r.status, path).toBe(200);
  return { body: r.body.toString(), ms: performance.now() - start };
}

describe("a document renamed in before its signature", () => {
  it("is answered only once its signature follows, and then with that signature", async () => {
    const http = await serve();
    renameIn("channels.json", "commit 1\n");
    renameIn("channels.json.asc", "signature 1\n");
    expect((await timedGet(http, "/channels.json")).body).toBe("commit 1\n");
    await sleep(30); // the next commit's renames come later than this one's (ctime ticks)
    renameIn("channels.json", "commit 2\n");
    let answered: string | undefined;
    const pending = timedGet(http, "/channels.json").then((r) => (answered = r.body));
    await sleep(150);
    // Served now, it would be a pair from two commits: the device's check fails (§9).
    expect(answered, "served before its signature was in place").toBeUndefined();
    renameIn("channels.json.asc", "signature 2\n");
    await pending;
    expect(answered).toBe("commit 2\n");
    expect((await timedGet(http, "/channels.json.asc")).body).toBe("signature 2\n");
  });

  it("is answered after the bound when the signature never follows, and then at once", async () => {
    const http = await serve({ settleMaxMs: 300 });
    renameIn("16.04/devel/mako/index.json", "index 1\n");
    renameIn("16.04/devel/mako/index.json.asc", "index signature 1\n");
    await sleep(30);
    renameIn("16.04/devel/mako/index.json", "index 2\n"); // the writer died before the .asc
    const first = await timedGet(http, "/16.04/devel/mako/index.json");
    expect(first.body).toBe("index 2\n");
    expect(first.ms).toBeGreaterThanOrEqual(290);
    const second = await timedGet(http, "/16.04/devel/mako/index.json");
    expect(second.body).toBe("index 2\n");
    expect(second.ms, "held again for the same stuck pair").toBeLessThan(250);
  });

  // A client asking for the signature first (or for both at once: found with two pipelined
  // requests) would otherwise get the old signature with the new document, on every try
  // that falls inside the same gap.
  it("holds a request for its signature too, which then gets the new signature", async () => {
    const http = await serve();
    renameIn("channels.json", "commit A\n");
    renameIn("channels.json.asc", "signature A\n");
    expect((await timedGet(http, "/channels.json.asc")).body).toBe("signature A\n"); // now in memory
    await sleep(30);
    renameIn("channels.json", "commit B\n");
    let answered: string | undefined;
    const pending = timedGet(http, "/channels.json.asc").then((r) => (answered = r.body));
    await sleep(150);
    expect(answered, "the old signature served while the new document is in place").toBeUndefined();
    renameIn("channels.json.asc", "signature B\n");
    await pending;
    expect(answered).toBe("signature B\n");
    expect((await timedGet(http, "/channels.json")).body).toBe("commit B\n");
  });

  it("answers a stuck pair's signature after the bound once, then at once", async () => {
    const http = await serve({ settleMaxMs: 300 });
    renameIn("16.04/devel/mako/index.json", "index X\n");
    renameIn("16.04/devel/mako/index.json.asc", "index signature X\n");
    await sleep(30);
    renameIn("16.04/devel/mako/index.json", "index Y\n"); // the writer died before the .asc
    const first = await timedGet(http, "/16.04/devel/mako/index.json.asc");
    expect(first.body).toBe("index signature X\n");
    expect(first.ms).toBeGreaterThanOrEqual(290);
    const second = await timedGet(http, "/16.04/devel/mako/index.json.asc");
    expect(second.ms, "held again for the same stuck pair").toBeLessThan(250);
  });

  it("does not hold new names, whose signature is installed first", async () => {
    const http = await serve({ settleMaxMs: 5000 });
    renameIn("16.04/devel/mako/index-0123456789abcdef.json.asc", "copy signature\n");
    await sleep(30);
    renameIn("16.04/devel/mako/index-0123456789abcdef.json", "copy\n");
    const copy = await timedGet(http, "/16.04/devel/mako/index-0123456789abcdef.json");
    expect(copy.body).toBe("copy\n");
    expect(copy.ms).toBeLessThan(2000);
  });
});
