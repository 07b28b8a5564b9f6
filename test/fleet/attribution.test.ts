/**
 * Which image a fetch counts for: on a tree made by the real import pipeline (full 1, full 2,
 * delta 2←1), and on documents with an alias channel sharing pool files and a redirect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { buildAttribution, downloadTargets, pollOwner, type TreeDocs } from "../../src/fleet/attribution.js";
import { fleetReport } from "../../src/fleet/report.js";
import type { AccessRecord } from "../../src/fleet/records.js";
import { readAttribution } from "../../src/fleet/tree-docs.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { buildImportedTree, type ImportedTree } from "../e2e/tree-fixture.js";
import { ua } from "./fixture.js";

const get = (path: string, o: Partial<AccessRecord> = {}): AccessRecord => ({
  method: "GET",
  path,
  status: 200,
  bytes: 0,
  range: null,
  aborted: false,
  remote: "10.0.0.1",
  userAgent: "",
  time: 0,
  ...o,
});

describe("attribution on an imported tree", () => {
  let t: ImportedTree;
  beforeAll(async () => {
    t = await buildImportedTree({ realisticSizes: true });
  }, 180_000);
  afterAll(() => rmSync(t.inst.base, { recursive: true, force: true }));

  it("marks the rootfs of each full image and the delta tarball, never a shared file", () => {
    const attr = readAttribution(t.config.publish_path);
    const index = t.index();
    const [full1, full2, delta] = index.images;
    const rootfsOf = (img: (typeof index.images)[number]) => img.files.find((f) => /ubports-[0-9a-f]+\.tar\.xz$/.test(f.path))!;
    const deltaFile = delta.files.find((f) => f.path.includes(".delta-"))!;
    const markers = [...attr.markers].map(
      ([path, targets]) => [path, targets.map((x) => [x.image.version, x.image.kind, x.image.base, x.size])] as const,
    );
    expect(new Map(markers)).toEqual(
      new Map([
        [rootfsOf(full1).path, [[1, "full", null, rootfsOf(full1).size]]],
        [rootfsOf(full2).path, [[2, "full", null, rootfsOf(full2).size]]],
        [deltaFile.path, [[2, "delta", 1, deltaFile.size]]],
      ]),
    );
    // version-2 is in full 2 and in the delta: it tells neither apart, so it counts for none.
    expect(attr.markers.has("/devel/mako/version-2.tar.xz")).toBe(false);
    expect(pollOwner(attr, "/devel/mako/index.json")).toEqual({ channel: "devel", device: "mako" });
    expect(pollOwner(attr, "/devel/mako/index-0123456789abcdef.json")).toEqual({ channel: "devel", device: "mako" });
    expect(pollOwner(attr, "/devel/mako/index-0123.json")).toBeUndefined();
    expect(pollOwner(attr, "/devel/mako/version-2.json")).toBeUndefined();
  });

  it("reports every image, counting a device that fetched the whole delta path", async () => {
    const index = t.index();
    const delta = index.images[2];
    const fetches = delta.files.map((f) => get(f.path, { bytes: f.size, userAgent: ua(1) }));
    const rows = await fleetReport([get("/devel/mako/index.json", { userAgent: ua(1) }), ...fetches], {
      publishPath: t.config.publish_path,
    });
    expect(rows).toEqual([
      { channel: "devel", device: "mako", version: 2, kind: "full", base: null, started: 0, completed: 0, clients: 1 },
      { channel: "devel", device: "mako", version: 2, kind: "delta", base: 1, started: 1, completed: 1, clients: 1 },
      { channel: "devel", device: "mako", version: 1, kind: "full", base: null, started: 0, completed: 0, clients: 1 },
    ]);
  });
});

describe("attribution across channels", () => {
  const file = (path: string, size: number, order = 0) => ({ path, signature: `${path}.asc`, size, checksum: "0".repeat(64), order });
  const index = (dir: string): IndexDoc => ({
    global: {},
    images: [
      {
        type: "full",
        version: 3,
        description: "",
        files: [file("/pool/rootfs-3.tar.xz", 900), file("/pool/device-1.tar.xz", 50, 1), file(`${dir}/version-3.tar.xz`, 10, 2)],
      },
      {
        type: "full",
        version: 4,
        description: "",
        files: [file("/pool/rootfs-3.tar.xz", 900), file("/pool/device-2.tar.xz", 60, 1), file(`${dir}/version-4.tar.xz`, 10, 2)],
      },
    ],
  });
  const docs: TreeDocs = {
    channels: {
      stable: { devices: { mako: { index: "/stable/mako/index-00112233445566aa.json" } } },
      // An alias: its own directory and version tarballs, the target's pool files.
      rc: { alias: "stable", devices: { mako: { index: "/rc/mako/index.json" } } },
      // A redirect channel reads stable's index.
      old: { redirect: "stable", hidden: true, devices: { mako: { index: "/stable/mako/index-00112233445566aa.json" } } },
      // A per-device redirect, too.
      other: { devices: { mako: { index: "/stable/mako/index.json", redirect: "stable" } } },
    },
    indexes: new Map([
      ["stable\u0000mako", index("/stable/mako")],
      ["rc\u0000mako", index("/rc/mako")],
    ]),
  };
  const attr = buildAttribution(docs);

  it("gives an image whose rootfs is shared its own device tarball as the marker", () => {
    // rootfs-3 is in both full images: the device tarballs tell them apart.
    expect(attr.markers.has("/pool/rootfs-3.tar.xz")).toBe(false);
    expect(downloadTargets(attr, "/pool/device-2.tar.xz").map((t) => `${t.image.channel}/${t.image.version}`)).toEqual([
      "rc/4",
      "stable/4",
    ]);
  });

  it("counts a pool marker for the channel the client names, else for every channel listing it", () => {
    const who = (u: string) =>
      downloadTargets(
        attr,
        "/pool/device-2.tar.xz",
        (() => {
          const m = /device=(.*);channel=(.*);build/.exec(u);
          return m ? { device: m[1], channel: m[2] } : undefined;
        })(),
      ).map((t) => t.image.channel);
    expect(who(ua(3, "mako", "rc"))).toEqual(["rc"]);
    expect(who(ua(3, "mako", "stable"))).toEqual(["stable"]);
    // A redirect (whole channel or per device) reads stable's index.
    expect(who(ua(3, "mako", "old"))).toEqual(["stable"]);
    expect(who(ua(3, "mako", "other"))).toEqual(["stable"]);
    expect(who(ua(3, "mako", "nowhere"))).toEqual(["rc", "stable"]);
    expect(who("curl/8")).toEqual(["rc", "stable"]);
  });

  it("counts index polls for the owner of the directory, redirects included", () => {
    expect(pollOwner(attr, "/stable/mako/index-00112233445566aa.json")).toEqual({ channel: "stable", device: "mako" });
    expect(pollOwner(attr, "/rc/mako/index.json")).toEqual({ channel: "rc", device: "mako" });
    expect(pollOwner(attr, "/old/mako/index.json")).toBeUndefined();
    expect(attr.images.map((i) => `${i.channel}/${i.version}`)).toEqual(["rc/3", "rc/4", "stable/3", "stable/4"]);
  });
});
