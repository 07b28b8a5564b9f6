/**
 * channels.json and index.json as data: decoding errors, the channel operations' effects on
 * the document, image bookkeeping and the orphan arithmetic of §7.4.
 */
import { describe, expect, it } from "vitest";
import * as ch from "../../src/model/channels.js";
import { cleanupPhased, parseIndex, type IndexDoc } from "../../src/model/index-doc.js";
import { expireImages, findImage, insertImage, setPhasedPercentage } from "../../src/model/images.js";
import { missingFiles, orphanedFiles } from "../../src/model/orphans.js";

const kindOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return [(err as { kind: string }).kind, (err as Error).message];
  }
  return ["none", ""];
};

describe("channels.json documents", () => {
  it("refuses what devices or the operations cannot use, naming the file", () => {
    expect(ch.parseChannels("", "/w/channels.json")).toEqual({});
    expect(kindOf(() => ch.parseChannels("[]", "/w/channels.json"))).toEqual([
      "TypeError",
      "Invalid channels.json, not a dict. (/w/channels.json)",
    ]);
    expect(kindOf(() => ch.parseChannels("{'a': 'a'}", "/w/channels.json"))[0]).toBe("ValueError");
    expect(kindOf(() => ch.parseChannels('{"a": {}}', "/w/c.json"))).toEqual([
      "TypeError",
      `Invalid channels.json: channel 'a' has no "devices" object (/w/c.json)`,
    ]);
    expect(kindOf(() => ch.parseChannels('{"a": {"devices": {"d": {}}}}', "/w/c.json"))[1]).toContain("device 'd' of channel 'a'");
  });

  it("redirect copies, alias checks, removal side effects and rename plans", () => {
    const doc: ch.ChannelsDoc = {};
    ch.createChannel(doc, "devel");
    ch.createDevice(doc, "devel", "mako");
    ch.setDeviceKeyring(doc, "devel", "mako", "/devel/mako/device.tar.xz");
    ch.createChannelRedirect(doc, "old", "devel");
    expect(doc.old).toEqual({
      devices: {
        mako: {
          index: "/devel/mako/index.json",
          keyring: { path: "/devel/mako/device.tar.xz", signature: "/devel/mako/device.tar.xz.asc" },
        },
      },
      redirect: "devel",
      hidden: true,
    });
    // A copy, not a shared object.
    doc.devel.devices.mako.index = "/changed";
    expect(doc.old.devices.mako.index).toBe("/devel/mako/index.json");
    doc.devel.devices.mako.index = "/devel/mako/index.json";

    ch.createChannel(doc, "self");
    doc.self.alias = "self";
    expect(kindOf(() => ch.assertChangeableAlias(doc, "self", "devel"))).toEqual(["KeyError", "Channel isn't an alias: self"]);
    expect(ch.aliasTarget(doc, "self")).toBeUndefined();

    ch.createChannel(doc, "rc");
    ch.createPerDeviceRedirect(doc, "mako", "rc", "devel");
    expect(ch.removeChannel(doc, "devel")).toEqual({ deleteDir: true });
    expect(doc.rc.devices).toEqual({});
    expect(ch.removeChannel(doc, "old")).toEqual({ deleteDir: false });
    expect(ch.removeChannel(doc, "self")).toEqual({ deleteDir: false });

    ch.createChannel(doc, "a");
    ch.createDevice(doc, "a", "x");
    ch.createDevice(doc, "a", "y");
    ch.createChannel(doc, "b");
    ch.createDevice(doc, "b", "z");
    ch.createPerDeviceRedirect(doc, "z", "a", "b");
    ch.createChannel(doc, "c");
    ch.createPerDeviceRedirect(doc, "x", "c", "a");
    const plan = ch.renameChannel(doc, "a", "n/a");
    expect(plan).toEqual({ moveDir: true, devices: ["x", "y"] });
    expect(doc["n/a"].devices).toEqual({
      x: { index: "/n/a/x/index.json" },
      y: { index: "/n/a/y/index.json" },
      z: { index: "/b/z/index.json", redirect: "b" },
    });
    expect(doc.c.devices.x).toEqual({ index: "/n/a/x/index.json", redirect: "n/a" });
    expect(doc.a).toBeUndefined();
  });
});

describe("index.json documents", () => {
  const img = (type: string, version: number, base?: number, extra: object = {}) => ({
    type,
    version,
    ...(base ? { base } : {}),
    description: "",
    files: [],
    ...extra,
  });

  it("validates the shape and keeps phasing only on the latest version", () => {
    expect(kindOf(() => parseIndex("[]", "/i.json"))).toEqual(["TypeError", "Invalid index.json, not a dict. (/i.json)"]);
    expect(kindOf(() => parseIndex('{"global": {}, "images": [{"type": "full", "files": []}]}', "/i.json"))[1]).toBe(
      "Invalid index.json: image #0 has no integer version (/i.json)",
    );
    const doc: IndexDoc = {
      global: {},
      images: [img("full", 1, 0, { "phased-percentage": 10 }), img("full", 2, 0, { "phased-percentage": 20 })],
    };
    expect(cleanupPhased(doc)).toBe(true);
    expect(doc.images.map((i) => i["phased-percentage"])).toEqual([undefined, 20]);
    expect(cleanupPhased(doc)).toBe(false);
  });

  it("inserts by ascending version, finds exactly one match, expires fulls and dependent deltas", () => {
    const doc: IndexDoc = { global: {}, images: [] };
    for (const i of [img("full", 3), img("full", 1), img("delta", 3, 1), img("full", 2), img("delta", 2, 1), img("delta", 3, 2)])
      insertImage(doc, i);
    expect(doc.images.map((i) => `${i.type}${i.version}${i.base ?? ""}`)).toEqual([
      "full1",
      "full2",
      "delta21",
      "full3",
      "delta31",
      "delta32",
    ]);
    expect(findImage(doc, "delta", 3, 2, "x")).toBe(5);
    doc.images.push(img("full", 3));
    expect(kindOf(() => findImage(doc, "full", 3, null, "idx"))).toEqual([
      "IndexError",
      "Couldn't find a match. (full image 3 in idx, 2 images match)",
    ]);
    doc.images.pop();
    setPhasedPercentage(doc, 3, 30, "x");
    expect(doc.images.filter((i) => i["phased-percentage"] === 30).length).toBe(3);
    expect(expireImages(doc, 2).map((i) => `${i.type}${i.version}${i.base ?? ""}`)).toEqual(["full1", "delta21", "delta31"]);
    expect(kindOf(() => expireImages(doc, -1))[0]).toBe("ValueError");
  });
});

describe("missing and orphaned files (§7.4)", () => {
  it("keeps sidecars of referenced tarballs and adds empty directories", () => {
    const existing = new Set([
      "/w/channels.json",
      "/w/pool/a.tar.xz",
      "/w/pool/a.json",
      "/w/pool/a.json.asc",
      "/w/pool/b.json",
      "/w/robots.txt",
    ]);
    const referenced = new Set(["/w/channels.json", "/w/channels.json.asc", "/w/pool/a.tar.xz", "/w/pool/a.tar.xz.asc"]);
    expect(orphanedFiles(existing, new Set(["/w/empty"]), referenced)).toEqual(["/w/empty", "/w/pool/b.json", "/w/robots.txt"]);
    expect(missingFiles(existing, referenced)).toEqual(["/w/channels.json.asc", "/w/pool/a.tar.xz.asc"]);
  });
});
