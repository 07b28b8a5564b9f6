/**
 * The pure rules of the file server: which request targets map to which tree paths, the
 * conditional/range decisions, content types and cache lifetimes, and the parsing behind the
 * unknown-device warnings.
 */
import { describe, expect, it } from "vitest";
import { etagOf, preconditionStatus, selectRange } from "../../src/server/conditional.js";
import { cacheControlOf, contentTypeOf, CACHE_IMMUTABLE, CACHE_MUTABLE, CACHE_SHORT } from "../../src/server/content-rules.js";
import { channelDevices, identityProblem, locateMissing, parseClientUserAgent } from "../../src/server/device-watch.js";
import { pathSegments } from "../../src/server/url-path.js";

describe("request target → tree path", () => {
  it.each([
    ["/pool/x.tar.xz", ["pool", "x.tar.xz"]],
    ["//pool/x.tar.xz", ["pool", "x.tar.xz"]],
    ["///pool///x.tar.xz", ["pool", "x.tar.xz"]],
    ["/channels.json?x=1#frag", ["channels.json"]],
    ["/16.04%2Fdevel", undefined],
    ["/16.04/devel/mako/index.json", ["16.04", "devel", "mako", "index.json"]],
    ["/a%20b.json", ["a b.json"]],
    ["http://example.net//pool/x", ["pool", "x"]],
    ["HTTPS://example.net:8443/channels.json", ["channels.json"]],
  ])("%s → %j", (target, want) => {
    expect(pathSegments(target)).toEqual(want);
  });

  it.each([
    "/../etc/passwd",
    "/pool/../../etc/passwd",
    "/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/pool%2f..%2f..%2fetc/passwd",
    "/%252e%252e/etc/passwd",
    "/pool/%252e%252e%252fetc",
    "/pool\\..\\x",
    "/pool/%5c..%5cx",
    "/pool/x%00.json",
    "/pool/x\0.json",
    "/pool/%c0%ae%c0%ae/x",
    "/pool/%e0%80%ae",
    "/pool/%",
    "/pool/%zz",
    "/.hidden",
    "/pool/.tmp-upload",
    "/./channels.json",
    "/pool/",
    "/",
    "",
    "*",
    "channels.json",
    "/pool/x\r\nSet-Cookie: a",
    "/pool/x\x7f",
  ])("refuses %j", (target) => {
    expect(pathSegments(target)).toBeUndefined();
  });
});

describe("conditional requests and ranges", () => {
  const v = { size: 1000, mtimeMs: Date.parse("2026-11-29T10:00:00.250Z") };
  const etag = etagOf(v);
  const lm = new Date(v.mtimeMs).toUTCString();

  it("ETag changes with size and with mtime", () => {
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(etagOf({ ...v, size: 1001 })).not.toBe(etag);
    expect(etagOf({ ...v, mtimeMs: v.mtimeMs + 1 })).not.toBe(etag);
  });

  it("If-None-Match wins over If-Modified-Since, weak tags match, * matches", () => {
    expect(preconditionStatus({ ifNoneMatch: etag }, v)).toBe(304);
    expect(preconditionStatus({ ifNoneMatch: `"x", W/${etag}` }, v)).toBe(304);
    expect(preconditionStatus({ ifNoneMatch: "*" }, v)).toBe(304);
    expect(preconditionStatus({ ifNoneMatch: '"other"', ifModifiedSince: lm }, v)).toBeUndefined();
    expect(preconditionStatus({ ifModifiedSince: lm }, v)).toBe(304);
    expect(preconditionStatus({ ifModifiedSince: new Date(v.mtimeMs - 2000).toUTCString() }, v)).toBeUndefined();
    expect(preconditionStatus({ ifModifiedSince: "not a date" }, v)).toBeUndefined();
  });

  it("If-Match and If-Unmodified-Since answer 412 when the file changed", () => {
    expect(preconditionStatus({ ifMatch: '"other"' }, v)).toBe(412);
    expect(preconditionStatus({ ifMatch: `W/${etag}` }, v)).toBe(412);
    expect(preconditionStatus({ ifMatch: etag }, v)).toBeUndefined();
    expect(preconditionStatus({ ifUnmodifiedSince: new Date(v.mtimeMs - 5000).toUTCString() }, v)).toBe(412);
  });

  it.each([
    ["bytes=0-99", { start: 0, end: 99 }],
    ["bytes=990-", { start: 990, end: 999 }],
    ["bytes=990-5000", { start: 990, end: 999 }],
    ["bytes=-10", { start: 990, end: 999 }],
    ["bytes=-5000", { start: 0, end: 999 }],
    ["BYTES = 5 - 5", { start: 5, end: 5 }],
    ["bytes=1000-", "unsatisfiable"],
    ["bytes=-0", "unsatisfiable"],
    ["bytes=5-1", undefined],
    ["bytes=0-1,5-9", undefined],
    ["items=0-1", undefined],
    ["bytes=-", undefined],
    ["bytes=abc", undefined],
  ])("Range %j → %j", (header, want) => {
    expect(selectRange(header, undefined, v)).toEqual(want);
  });

  it("If-Range: a strong ETag or the exact date keeps the range, anything else sends 200", () => {
    expect(selectRange("bytes=0-1", etag, v)).toEqual({ start: 0, end: 1 });
    expect(selectRange("bytes=0-1", lm, v)).toEqual({ start: 0, end: 1 });
    expect(selectRange("bytes=0-1", `W/${etag}`, v)).toBeUndefined();
    expect(selectRange("bytes=0-1", '"stale"', v)).toBeUndefined();
    expect(selectRange("bytes=0-1", new Date(v.mtimeMs - 60_000).toUTCString(), v)).toBeUndefined();
  });
});

describe("content types and cache lifetimes", () => {
  it.each([
    ["/channels.json", "application/json", CACHE_MUTABLE],
    ["/channels.json.asc", "application/pgp-signature", CACHE_MUTABLE],
    ["/16.04/devel/mako/index.json", "application/json", CACHE_MUTABLE],
    ["/16.04/devel/mako/index.json.asc", "application/pgp-signature", CACHE_MUTABLE],
    ["/pool/ubports-abc.tar.xz", "application/x-xz", CACHE_IMMUTABLE],
    ["/pool/ubports-abc.tar.xz.asc", "application/pgp-signature", CACHE_SHORT],
    ["/gpg/image-signing.tar.xz", "application/x-xz", CACHE_SHORT],
    ["/16.04/devel/mako/version-3.tar.xz", "application/x-xz", CACHE_SHORT],
    ["/pool/boot.img", "application/octet-stream", CACHE_IMMUTABLE],
  ])("%s", (path, type, cache) => {
    expect(contentTypeOf(path)).toBe(type);
    expect(cacheControlOf(path)).toBe(cache);
  });
});

describe("client User-Agent and channels.json", () => {
  const doc = channelDevices(JSON.stringify({ "16.04/devel": { devices: { mako: {} } }, bad: {} }))!;

  it("parses the system-image client's User-Agent, channel names with / included", () => {
    expect(parseClientUserAgent("Ubuntu System Image Upgrade Client: device=mako;channel=16.04/devel;build=12")).toEqual({
      device: "mako",
      channel: "16.04/devel",
      build: "12",
    });
    expect(parseClientUserAgent("curl/7.88.1")).toBeUndefined();
    expect(parseClientUserAgent(undefined)).toBeUndefined();
    expect(parseClientUserAgent("Ubuntu System Image Upgrade Client: nonsense")).toBeUndefined();
  });

  it("tells unknown channels from unknown devices", () => {
    expect(identityProblem({ device: "mako", channel: "16.04/devel", build: "1" }, doc)).toBeUndefined();
    expect(identityProblem({ device: "flo", channel: "16.04/devel", build: "1" }, doc)).toBe("unknown device");
    expect(identityProblem({ device: "mako", channel: "16.04/stable", build: "1" }, doc)).toBe("unknown channel");
    expect(identityProblem({ device: "mako", channel: "bad", build: "1" }, doc)).toBe("unknown device");
  });

  it("never throws on malformed channels.json", () => {
    expect(channelDevices("{")).toBeUndefined();
    expect(channelDevices("[1]")).toBeUndefined();
    expect(channelDevices("null")).toBeUndefined();
    expect(channelDevices('{"a": null, "b": 3}')).toEqual(
      new Map([
        ["a", new Set()],
        ["b", new Set()],
      ]),
    );
  });

  it("locates 404s below channel/device directories", () => {
    expect(locateMissing("/16.04/devel/flo/index.json", doc)).toEqual({ channel: "16.04/devel", device: "flo", problem: "unknown device" });
    expect(locateMissing("/16.04/devel/mako/version-9.tar.xz", doc)).toEqual({
      channel: "16.04/devel",
      device: "mako",
      problem: "missing file",
    });
    expect(locateMissing("/16.04/stable/mako/index.json", doc)).toEqual({
      channel: "16.04/stable",
      device: "mako",
      problem: "unknown channel",
    });
    expect(locateMissing("/16.04/stable/mako/index.json", undefined)).toEqual({
      channel: "16.04/stable",
      device: "mako",
      problem: "missing file",
    });
    expect(locateMissing("/pool/x/y/z.tar.xz", doc)).toBeUndefined();
    expect(locateMissing("/gpg/blacklist.tar.xz", doc)).toBeUndefined();
    expect(locateMissing("/channels.json", doc)).toBeUndefined();
  });
});
