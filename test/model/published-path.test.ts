/** The published-path rule (issue 13 #2). Pure. */
import { describe, expect, it } from "vitest";
import { basenameClash, publishedPathProblem } from "../../src/model/published-path.js";

describe("publishedPathProblem", () => {
  it.each([
    "/pool/ubports-5ac4e2d1b7f0c9a8e6d5c4b3a29180f7.tar.xz",
    "/pool/ubports-5ac4.delta-ubports-1b2c.tar.xz",
    "/ubports-touch/16.04/stable/mako/version-12.tar.xz",
    "/gpg/archive-master.tar.xz.asc",
    "/pool/img_1.2+git~rc1-7.tar.xz",
    `/pool/${"a".repeat(200)}`,
  ])("accepts %j", (p) => {
    expect(publishedPathProblem(p)).toBeUndefined();
  });

  it.each<[string, RegExp]>([
    ["pool/a.tar.xz", /does not start with '\/'/],
    ["//host/a.tar.xz", /empty component/],
    ["/pool/", /empty component/],
    ["/pool/../a.tar.xz", /a "\.\." component/],
    ["/pool/./a.tar.xz", /a "\." component/],
    ["/pool/.tmp-evil/x.tar.xz", /component "\.tmp-evil" starts with a dot/],
    ["/pool/.hidden.tar.xz", /starts with a dot/],
    ["/pool/device-1\nformat data\nx.tar.xz", /has a control character/],
    ["/pool/a b.tar.xz", /has whitespace/],
    ["/pool/-a.tar.xz", /outside \[A-Za-z0-9\._\+~-\]/],
    ["/pool/a%0a.tar.xz", /outside/],
    ["/pool/é.tar.xz", /outside/],
    [`/pool/${"a".repeat(201)}`, /longer than 200/],
    [`/${"a/".repeat(2100)}x`, /longer than 4096/],
  ])("refuses %j", (p, why) => {
    expect(publishedPathProblem(p)).toMatch(why);
  });
});

describe("basenameClash", () => {
  it("finds two different paths with one basename, and nothing else", () => {
    expect(basenameClash(["/pool/a.tar.xz", "/pool/b.tar.xz", "/pool/a.tar.xz"])).toBeUndefined();
    expect(basenameClash(["/pool/a.tar.xz", "/other/a.tar.xz"])).toEqual(["/pool/a.tar.xz", "/other/a.tar.xz"]);
  });
});
