/**
 * Reading access lines (si serve's JSON, nginx si_json, nginx combined, hostile input) and
 * what a response for a marker file counts as.
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseLine, readAccessLogs, type BadLines } from "../../src/fleet/parse.js";
import { canonicalUrlPath, clientOf, downloadOutcome, singleRange, type AccessRecord } from "../../src/fleet/records.js";

const rec = (o: Partial<AccessRecord>): AccessRecord => ({
  method: "GET",
  path: "/pool/x.tar.xz",
  status: 200,
  bytes: 1000,
  range: null,
  aborted: false,
  remote: "10.0.0.1",
  userAgent: "ua",
  time: 0,
  ...o,
});

describe("access lines", () => {
  it("reads si serve's access lines and skips its other events", () => {
    const line = JSON.stringify({
      time: "2026-12-07T02:29:04.123Z",
      level: "info",
      event: "access",
      listener: "http",
      method: "GET",
      path: "//pool/x.tar.xz?a=b",
      status: 206,
      bytes: 10,
      duration_ms: 1.5,
      remote: "::ffff:10.0.0.1",
      user_agent: null,
      range: "bytes=0-9",
      aborted: true,
    });
    expect(parseLine(line, "si")).toEqual({
      method: "GET",
      path: "//pool/x.tar.xz?a=b",
      status: 206,
      bytes: 10,
      range: "bytes=0-9",
      aborted: true,
      remote: "::ffff:10.0.0.1",
      userAgent: "",
      time: Date.parse("2026-12-07T02:29:04.123Z"),
    });
    expect(parseLine('{"level":"warn","event":"unknown-device","path":"/x"}', "si")).toBeNull();
    expect(parseLine("   ", "auto")).toBeNull();
  });

  it("reads nginx si_json lines (empty Range, aborted as a JSON boolean, ISO time with offset)", () => {
    const line =
      '{"time":"2026-12-07T03:29:04+01:00","method":"GET","path":"/pool/x.tar.xz","status":200,"bytes":512,"range":"","aborted":false,"remote":"10.0.0.2","user_agent":"a \\"quoted\\" UA"}';
    expect(parseLine(line, "json")).toMatchObject({
      status: 200,
      bytes: 512,
      range: null,
      aborted: false,
      userAgent: 'a "quoted" UA',
      time: Date.parse("2026-12-07T02:29:04Z"),
    });
    expect(parseLine(line, "auto")).toEqual(parseLine(line, "json"));
  });

  it("reads nginx combined lines, with nginx's \\x escapes, and has no Range then", () => {
    const line =
      '10.0.0.3 - - [07/Dec/2026:02:29:04 +0000] "GET /devel/mako/index.json HTTP/1.1" 200 1234 "-" "Ubuntu System Image Upgrade Client: device=mako;channel=devel;build=1 \\x22x\\x22"';
    const r = parseLine(line, "combined") as AccessRecord;
    expect(r).toEqual({
      method: "GET",
      path: "/devel/mako/index.json",
      status: 200,
      bytes: 1234,
      range: undefined,
      aborted: false,
      remote: "10.0.0.3",
      userAgent: 'Ubuntu System Image Upgrade Client: device=mako;channel=devel;build=1 "x"',
      time: Date.parse("2026-12-07T02:29:04Z"),
    });
    expect(parseLine(line, "auto")).toEqual(r);
    expect((parseLine(line.replace(" 1234 ", " - "), "combined") as AccessRecord).bytes).toBe(0);
  });

  it("turns hostile or broken lines into errors, not records or exceptions", () => {
    const hostile = [
      "{not json",
      "[1,2,3]",
      '{"method":"GET","path":"/x","status":"abc","bytes":1,"range":"","remote":"r","user_agent":"u"}',
      '{"method":"GET","path":"/x","status":200,"bytes":-5,"range":"","remote":"r","user_agent":"u"}',
      '{"method":"GET","path":"/x","status":200,"bytes":1e400,"range":"","remote":"r","user_agent":"u"}',
      '{"method":{"a":1},"path":"/x","status":200,"bytes":1,"range":"","remote":"r","user_agent":"u"}',
      '{"__proto__":{"method":"GET"},"path":"/x","status":200,"bytes":1,"range":"","remote":"r","user_agent":"u"}',
      "10.0.0.1 - - [bad] GET / 200",
      '10.0.0.1 - - [07/Dec/2026:02:29:04 +0000] "" 400 0 "-" "-"',
      "x".repeat(70_000),
      "\u0000\u0001\u0002",
    ];
    for (const line of hostile) {
      const r = parseLine(line, "auto");
      expect(r !== null && "error" in r, line.slice(0, 80)).toBe(true);
    }
    // A time that cannot be read leaves the record usable (time NaN), not an error.
    const r = parseLine(
      '{"time":"yesterday","method":"GET","path":"/x","status":200,"bytes":1,"range":"","remote":"r","user_agent":"u"}',
      "json",
    );
    expect(r).toMatchObject({ time: NaN });
  });

  it("streams files, counting bad lines with their numbers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "si-fleet-parse-"));
    try {
      const file = join(dir, "access.log");
      const good = '{"method":"GET","path":"/x","status":200,"bytes":1,"range":"","remote":"r","user_agent":"u"}';
      writeFileSync(file, [good, "garbage", "", good, "{"].join("\n") + "\n");
      const bad: BadLines = { count: 0, first: [] };
      const got: AccessRecord[] = [];
      for await (const r of readAccessLogs([file], "auto", bad)) got.push(r);
      expect(got).toHaveLength(2);
      expect(bad).toEqual({
        count: 2,
        first: [
          { file, line: 2, error: "not an nginx combined line" },
          { file, line: 5, error: "not valid JSON" },
        ],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("what a response for a marker counts as", () => {
  const size = 1000;
  it("counts a whole 200 as started and completed, a cut or short one as started only", () => {
    expect(downloadOutcome(rec({}), size)).toEqual({ started: true, completed: true });
    expect(downloadOutcome(rec({ aborted: true }), size)).toEqual({ started: true, completed: false });
    expect(downloadOutcome(rec({ bytes: 999 }), size)).toEqual({ started: true, completed: false });
    expect(downloadOutcome(rec({ method: "HEAD", bytes: 0 }), size)).toEqual({ started: false, completed: false });
    expect(downloadOutcome(rec({ status: 304, bytes: 0 }), size)).toEqual({ started: false, completed: false });
    expect(downloadOutcome(rec({ status: 404 }), size)).toEqual({ started: false, completed: false });
  });

  it("counts ranges by where they start and end", () => {
    expect(downloadOutcome(rec({ status: 206, range: "bytes=0-99", bytes: 100 }), size)).toEqual({ started: true, completed: false });
    expect(downloadOutcome(rec({ status: 206, range: "bytes=100-", bytes: 900 }), size)).toEqual({ started: false, completed: true });
    expect(downloadOutcome(rec({ status: 206, range: "bytes=100-", bytes: 899 }), size)).toEqual({ started: false, completed: false });
    expect(downloadOutcome(rec({ status: 206, range: "bytes=-100", bytes: 100 }), size)).toEqual({ started: false, completed: true });
    expect(downloadOutcome(rec({ status: 206, range: "bytes=0-5000", bytes: 1000 }), size)).toEqual({ started: true, completed: true });
    expect(downloadOutcome(rec({ status: 206, range: "bytes=0-1,5-9", bytes: 7 }), size)).toEqual({ started: false, completed: false });
    // A Range the server ignored (200): the whole body was sent.
    expect(downloadOutcome(rec({ status: 200, range: "bytes=500-" }), size)).toEqual({ started: true, completed: true });
  });

  it("without a Range field (combined), counts a 206 only when it carried the whole file", () => {
    expect(downloadOutcome(rec({ status: 206, range: undefined, bytes: 1000 }), size)).toEqual({ started: true, completed: true });
    expect(downloadOutcome(rec({ status: 206, range: undefined, bytes: 400 }), size)).toEqual({ started: false, completed: false });
  });

  it("reads ranges, paths and client identities as the server does", () => {
    expect(singleRange("bytes=5-", 10)).toEqual({ start: 5, end: 9 });
    expect(singleRange("bytes=-20", 10)).toEqual({ start: 0, end: 9 });
    expect(singleRange("bytes=9-3", 10)).toBeUndefined();
    expect(singleRange("items=0-1", 10)).toBeUndefined();
    expect(canonicalUrlPath("//pool//x.tar.xz?y#z")).toBe("/pool/x.tar.xz");
    expect(canonicalUrlPath("http://host:80/devel/%6Dako/index.json")).toBe("/devel/mako/index.json");
    for (const bad of ["/pool/../etc/passwd", "/pool/%2e%2e/x", "/pool/.x", "/pool/", "/a%zz", "relative", "/a\\b"])
      expect(canonicalUrlPath(bad), bad).toBeUndefined();
    expect(clientOf("Ubuntu System Image Upgrade Client: device=mako;channel=ubports/16.04=x;build=3")).toEqual({
      device: "mako",
      channel: "ubports/16.04=x",
    });
    expect(clientOf("curl/8")).toBeUndefined();
  });
});
