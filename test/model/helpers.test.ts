/**
 * Pure helpers: generated_at, version_detail tags (test_tools' tag cases plus §13 #10),
 * file naming (§1.2), names and URL paths devices can use.
 */
import { describe, expect, it } from "vitest";
import { formatGeneratedAt } from "../../src/model/generated-at.js";
import { assertChannelName, assertDeviceName, isVersionNumber } from "../../src/model/names.js";
import { deltaName, filePrefix, sidecarPath, urlPathProblem, versionTarballName } from "../../src/model/naming.js";
import { getTagsOnVersionDetail, setTagOnVersionDetail, splitVersionDetail } from "../../src/model/version-detail.js";
import { channelIniText, portValue } from "../../src/model/version-tarball.js";

describe("generated_at (client-protocol §5.2)", () => {
  it("is strftime('%a %b %d %H:%M:%S UTC %Y') in UTC with English names and a zero-padded day", () => {
    expect(formatGeneratedAt(new Date(Date.UTC(2026, 10, 29, 5, 44, 37)))).toBe("Sun Nov 29 05:44:37 UTC 2026");
    expect(formatGeneratedAt(new Date(Date.UTC(2013, 7, 1, 8, 1, 0)))).toBe("Thu Aug 01 08:01:00 UTC 2013");
    expect(formatGeneratedAt(new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 999)))).toBe("Thu Feb 29 23:59:59 UTC 2024");
    // A local-time offset must not leak in: 23:30 at UTC-5 is the next day in UTC.
    expect(formatGeneratedAt(new Date("2025-12-31T23:30:00-05:00"))).toBe("Thu Jan 01 04:30:00 UTC 2026");
    expect(() => formatGeneratedAt(new Date(NaN))).toThrow(/invalid date/);
  });
});

describe("version_detail tags (test_set_tag_on_version_detail*)", () => {
  const count = (l: string[]) => l.filter((x) => x.startsWith("tag=")).length;

  it("sets a tag", () => {
    const l = ["device=20150821-736d127", "custom=20150925-901-35-40-vivid", "keyring=archive-master", "version=6"];
    setTagOnVersionDetail(l, "OTA-x");
    expect(l).toContain("tag=OTA-x");
    expect(count(l)).toBe(1);
  });

  it("rewrites tags, also adjacent ones (the reference kept the second of two adjacent tags)", () => {
    const l = ["device=1", "tag=something", "keyring=archive-master", "tag=different", "version=6"];
    setTagOnVersionDetail(l, "OTA-x");
    expect(l).toEqual(["device=1", "keyring=archive-master", "version=6", "tag=OTA-x"]);
    const adjacent = ["a=1", "tag=x", "tag=y", "tag=z", "b=2"];
    expect(setTagOnVersionDetail(adjacent, "new")).toEqual(["a=1", "b=2", "tag=new"]);
  });

  it("clears with an empty tag", () => {
    const l = ["device=1", "custom=2", "tag=OTA-x", "keyring=archive-master"];
    setTagOnVersionDetail(l, "");
    expect(l).not.toContain("tag=OTA-x");
    expect(count(l)).toBe(0);
  });

  it("reads the first tag's value (up to a further '=')", () => {
    expect(getTagsOnVersionDetail(splitVersionDetail("ubports=1,tag=OTA-2,tag=OTA-3"))).toBe("OTA-2");
    expect(getTagsOnVersionDetail(["tag=a=b"])).toBe("a");
    expect(getTagsOnVersionDetail(["version=1"])).toBeNull();
    expect(splitVersionDetail("")).toEqual([]);
  });
});

describe("file naming (§1.2)", () => {
  it("takes the prefix up to the last '-'", () => {
    expect(filePrefix("ubuntu-abc.tar.xz")).toBe("ubuntu");
    expect(filePrefix("/devel/mako/version-12.tar.xz")).toBe("version");
    expect(filePrefix("ubports-rootfs-abc.tar.xz")).toBe("ubports-rootfs");
    expect(filePrefix("custom.tar.xz")).toBe("custom.tar.xz");
  });

  it("names deltas, version tarballs and sidecars", () => {
    expect(deltaName("/x/pool/source.tar.xz", "/x/pool/destination.tar.xz")).toBe("destination.delta-source.tar.xz");
    expect(deltaName("ubports-c315.tar.xz", "ubports-1ee1.tar.xz")).toBe("ubports-1ee1.delta-ubports-c315.tar.xz");
    expect(versionTarballName(12)).toBe("version-12.tar.xz");
    expect(sidecarPath("/p/pool/a-b.tar.xz")).toBe("/p/pool/a-b.json");
  });

  it("refuses URL paths devices would mis-join (client-protocol §11 #13)", () => {
    expect(urlPathProblem("/pool/a.tar.xz")).toBeUndefined();
    expect(urlPathProblem("//pool/a")).toMatch(/empty segment/);
    expect(urlPathProblem("/pool//a")).toMatch(/empty segment/);
    expect(urlPathProblem("/pool/../a")).toMatch(/'\.\.'/);
    expect(urlPathProblem("pool/a")).toMatch(/start with/);
  });
});

describe("names and versions", () => {
  it("accepts nested channel names and refuses escaping or clashing ones", () => {
    for (const ok of ["devel", "14.04/devel", "16.04/arm64/android9plus/stable", "rc-proposed", "x.y"])
      expect(() => assertChannelName(ok)).not.toThrow();
    for (const bad of ["", "/a", "a/", "a//b", "..", "a/../b", "./a", "pool", "gpg", "pool/x", "update", "a\tb"]) {
      expect(() => assertChannelName(bad), bad).toThrow(/Cannot create channel/);
    }
    expect(() => assertDeviceName("mako")).not.toThrow();
    for (const bad of ["a/b", "", "..", "keys"]) expect(() => assertDeviceName(bad), bad).toThrow(/Cannot create device/);
  });

  it("takes versions 1..65535 only (the client asserts 16 bits)", () => {
    expect([1, 65535, 1234].every(isVersionNumber)).toBe(true);
    expect([0, 65536, -1, 1.5, NaN, "5"].some(isVersionNumber)).toBe(false);
  });
});

describe("channel.ini text (§5.5)", () => {
  it("disables port 0 and orders channel_target before version_detail", () => {
    expect(portValue(0)).toBe("disabled");
    expect(portValue("0")).toBe("disabled");
    expect(portValue("443")).toBe("443");
    const text = channelIniText({
      fqdn: "h",
      httpPort: 80,
      httpsPort: "0",
      channel: "c",
      device: "d",
      version: " 5 ",
      channelTarget: "t",
      versionDetail: "v",
    });
    expect(text).toBe(
      "[service]\nbase: h\nhttp_port: 80\nhttps_port: disabled\nchannel: c\ndevice: d\nbuild_number: 5\nchannel_target: t\nversion_detail: v\n",
    );
  });
});
