/**
 * The version_detail grammar (issue 13 #1): real UBports items pass, injections fail with a
 * reason that names the item and key. Pure.
 */
import { describe, expect, it } from "vitest";
import {
  describeDetailProblem,
  detailItemProblem,
  detailValueProblem,
  setTagOnVersionDetail,
  textProblem,
  versionDetailProblem,
} from "../../src/model/version-detail.js";

const sha = "5ac4e2d1b7f0c9a8e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a2918f0a";

describe("version_detail grammar", () => {
  it.each([
    "ubports=20240101-12345",
    "tag=OTA-25",
    "tag=2026-11-29/2",
    "device=20231105-123",
    "keyring=archive-master",
    "version=12",
    `device=${sha}`,
    "rootfs=20220102-1",
    "raw-device=20160130",
    "http-cdimage=1.2.3~rc1+git",
    `tag=2026-11-29/2,ubports=20220102-1,device=${sha},keyring=archive-master,version=2`,
    "",
  ])("accepts %j", (detail) => {
    expect(versionDetailProblem(detail)).toBeUndefined();
  });

  it.each<[string, string, string | null, RegExp]>([
    ["device=1\n[service]\nbase: evil.example.com", "device=1\n[service]", "device", /control character "\\n"/],
    ["a=1,,b=2", "", null, /empty item/],
    ["a=1,", "", null, /empty item/],
    ["abcdef", "abcdef", null, /not key=value/],
    ["Tag=x", "Tag=x", "Tag", /key "Tag" is not/],
    ["9a=x", "9a=x", "9a", /key "9a" is not/],
    ["tag=", "tag=", "tag", /value is empty/],
    ["tag=a b", "tag=a b", "tag", /whitespace " "/],
    ["tag=a=b", "tag=a=b", "tag", /reserved character "="/],
    ["tag=[x]", "tag=[x]", "tag", /reserved character "\["/],
    ["tag=a;b", "tag=a;b", "tag", /reserved character ";"/],
    ["tag=a#b", "tag=a#b", "tag", /reserved character "#"/],
    ['tag=a"b', 'tag=a"b', "tag", /reserved character "\\""/],
    ["tag=a'b", "tag=a'b", "tag", /reserved character "'"/],
    ["tag=a\\b", "tag=a\\b", "tag", /reserved character "\\\\"/],
    ["tag=é", "tag=é", "tag", /non-ASCII/],
    ["tag=a\u0000", "tag=a\u0000", "tag", /control character/],
  ])("refuses %j", (detail, item, key, reason) => {
    const p = versionDetailProblem(detail);
    expect(p).toBeDefined();
    expect(p!.item.startsWith(item.split("\n")[0])).toBe(true);
    expect(p!.key).toBe(key);
    expect(p!.reason).toMatch(reason);
  });

  it("caps the length", () => {
    expect(versionDetailProblem(`a=${"x".repeat(1022)}`)).toBeUndefined();
    expect(versionDetailProblem(`a=${"x".repeat(1023)}`)?.reason).toMatch(/longer than 1024/);
  });

  it('allows bare items only when asked (the tree API; the reference\'s tests write "abcdef")', () => {
    expect(versionDetailProblem("abcdef,tag=x", { allowBare: true })).toBeUndefined();
    expect(versionDetailProblem("abc def", { allowBare: true })?.reason).toMatch(/as a bare item it has whitespace/);
    expect(versionDetailProblem("abc\ndef", { allowBare: true })?.reason).toMatch(/control character/);
  });

  it("checks a generator's key and value apart, so a comma in the value is not a second item", () => {
    expect(versionDetailProblem("img=7,tag=EVIL")).toBeUndefined(); // joined, it looks fine...
    expect(describeDetailProblem(detailItemProblem("img", "7,tag=EVIL")!)).toBe(
      'version_detail item "img=7,tag=EVIL" (key "img"): the value has a reserved character "," (allowed: printable ASCII without , = [ ] \\ ; # quotes or whitespace)',
    );
    expect(detailItemProblem("img", "7")).toBeUndefined();
    expect(detailItemProblem("Img", "7")?.reason).toMatch(/key "Img"/);
  });

  it("a tag must be a legal value", () => {
    expect(setTagOnVersionDetail(["a=1"], "OTA-25")).toEqual(["a=1", "tag=OTA-25"]);
    expect(() => setTagOnVersionDetail(["a=1"], "OTA 25")).toThrow('Cannot set tag "OTA 25": the value has whitespace " "');
    expect(() => setTagOnVersionDetail(["a=1"], "x\n[service]")).toThrow(/control character "\\n"/);
    expect(detailValueProblem("OTA-25")).toBeUndefined();
  });
});

describe("descriptions and translations", () => {
  it("accept free text, refuse control characters and overlong text", () => {
    expect(textProblem("Ubuntu Touch OTA-25: « bug fixes », 中文")).toBeUndefined();
    expect(textProblem("a\nb")).toBe('it has the control character "\\n" at offset 1');
    expect(textProblem("a\u2028b")).toMatch(/control character/);
    expect(textProblem("a\u0085b")).toMatch(/control character/);
    expect(textProblem("x".repeat(1024))).toBeUndefined();
    expect(textProblem("x".repeat(1025))).toBe("it is longer than 1024 characters (1025)");
  });
});
