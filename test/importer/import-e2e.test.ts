/**
 * The standard pipeline end to end (issue 5): a build farm on 127.0.0.1 serves a rootfs and
 * a device tarball with monitor files; `si import-images` runs the standard config twice,
 * then a third time with nothing new.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { GpgHome } from "../helpers/gpg.js";
import type { Instance } from "../helpers/instance.js";
import { applyCheck } from "../helpers/apply-delta.js";
import { makeDeviceTree, makeRootfsV1, makeRootfsV2, serveInputs, standardInstance, tarXz, tmp, type InputServer } from "./fixtures.js";

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
const sha256 = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

describe("si import-images: the standard config end to end", () => {
  let inst: Instance;
  let farm: InputServer;
  let v1: string;
  let v2: string;
  const index = () => JSON.parse(readFileSync(join(inst.publish, "devel/mako/index.json"), "utf8")) as IndexDoc;

  beforeAll(async () => {
    farm = await serveInputs();
    const src = tmp("si-inputs-");
    makeRootfsV1(join(src, "v1"));
    makeRootfsV2(join(src, "v1"), join(src, "v2"));
    makeDeviceTree(join(src, "device"));
    v1 = tarXz(join(src, "v1"), join(src, "rootfs-v1.tar.xz"), ["system"]);
    v2 = tarXz(join(src, "v2"), join(src, "rootfs-v2.tar.xz"), ["system"]);
    const device = tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"]);
    farm.routes.set("/rootfs.tar.xz", { file: v1 });
    farm.routes.set("/rootfs.version", { body: "20260101-1\n" });
    farm.routes.set("/device.tar.xz", { file: device });
    farm.routes.set("/device.version", { body: "7" });
    inst = await standardInstance(farm.url);
  });
  afterAll(() => farm?.close());

  it("publishes version 1 with the files in config order, signed and checksummed", async () => {
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const doc = index();
    expect(doc.images).toHaveLength(1);
    const [img] = doc.images;
    expect(img).toMatchObject({ type: "full", version: 1 });
    const today = execFileSync("date", ["+%Y-%m-%d"], { encoding: "utf8" }).trim();
    expect(img.version_detail).toBe(`tag=${today},ubports=20260101-1,device=7,keyring=archive-master,version=1`);
    expect(img.description).toBe(img.version_detail);
    expect(img.files.map((f) => f.path.replace(/-[0-9a-f]{64}/, "-H"))).toEqual([
      "/pool/ubports-H.tar.xz",
      "/pool/device-H.tar.xz",
      "/pool/keyring-H.tar.xz",
      "/devel/mako/version-1.tar.xz",
    ]);
    for (const f of img.files) {
      const abs = join(inst.publish, f.path);
      expect(f.checksum).toBe(sha256(abs));
      expect(f.size).toBe(statSync(abs).size);
      expect(f.signature).toBe(f.path + ".asc");
    }
    // The rootfs is published as downloaded (already a system-image tarball).
    expect(sha256(join(inst.publish, img.files[0].path))).toBe(sha256(v1));
  });

  it("publishes version 2 with a delta from 1 whose application yields v2 exactly", async () => {
    farm.routes.set("/rootfs.tar.xz", { file: v2 });
    farm.routes.set("/rootfs.version", { body: "20260102-1" });
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const doc = index();
    expect(doc.images.map((i) => [i.type, i.version, i.base])).toEqual([
      ["full", 1, undefined],
      ["full", 2, undefined],
      ["delta", 2, 1],
    ]);
    const full2 = doc.images[1];
    const delta = doc.images[2];
    // The unchanged device tarball is left out of the delta; keyring and version always ship.
    expect(delta.files.map((f) => f.path.replace(/[0-9a-f]{64}/g, "H"))).toEqual([
      "/pool/ubports-H.delta-ubports-H.tar.xz",
      "/pool/keyring-H.tar.xz",
      "/devel/mako/version-2.tar.xz",
    ]);
    expect(delta.files.map((f) => f.order)).toEqual([0, 1, 2]);
    expect(full2.files[1].path).toBe(doc.images[0].files[1].path); // device pool file reused
    const deltaFile = join(inst.publish, delta.files[0].path);
    const removed = execFileSync("tar", ["-xJOf", deltaFile, "removed"], { encoding: "utf8" }).split("\n");
    expect(removed).toContain("system/etc/obsolete.conf");
    // Changed with the same size and mtime: must be replaced on devices.
    expect(removed).toContain("system/etc/stable.conf");
    expect(execFileSync("tar", ["-tJf", deltaFile], { encoding: "utf8" }).split("\n")[0]).toBe("removed");
    expect(applyCheck(join(inst.publish, doc.images[0].files[0].path), join(inst.publish, full2.files[0].path), deltaFile)).toEqual([]);
    for (const img of doc.images) for (const f of img.files) expect(f.checksum).toBe(sha256(join(inst.publish, f.path)));
  });

  it("publishes nothing on a third run and leaves index.json byte-identical", async () => {
    const before = readFileSync(join(inst.publish, "devel/mako/index.json"));
    const beforeChannels = readFileSync(join(inst.publish, "channels.json"));
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(inst.publish, "devel/mako/index.json"))).toEqual(before);
    expect(readFileSync(join(inst.publish, "channels.json"))).toEqual(beforeChannels);
  });

  it("leaves a tree in which every signature verifies with gpg and nothing is orphaned", () => {
    const signing = new GpgHome().importKey(join(inst.keys, "image-signing/public.asc"));
    const parents: Record<string, string> = {
      "archive-master": "archive-master",
      "image-master": "archive-master",
      "image-signing": "image-master",
      blacklist: "image-master",
    };
    const sigs = walk(inst.publish).filter((f) => f.endsWith(".asc"));
    expect(sigs.length).toBeGreaterThan(10);
    for (const sig of sigs) {
      const rel = relative(inst.publish, sig);
      const keyring = /^gpg\/(.+)\.tar\.xz\.asc$/.exec(rel)?.[1];
      const gpg = keyring ? new GpgHome().importKey(join(inst.keys, parents[keyring], "public.asc")) : signing;
      const r = gpg.verify(sig, sig.slice(0, -4));
      expect(r.ok, `${rel}: ${r.output}`).toBe(true);
    }
    // No temporary or half-written files anywhere in the tree.
    expect(walk(inst.publish).filter((f) => /\/\.[^/]*$|\.tmp/.test(f))).toEqual([]);
  });

  it("records every run in the import history", () => {
    const r = inst.si("history", "--json");
    expect(r.status).toBe(0);
    const runs = JSON.parse(r.stdout) as { outcome: string; devices: { outcome: string; version: number | null }[] }[];
    expect(runs.map((x) => x.outcome)).toEqual(["ok", "ok", "ok"]);
    expect(runs.map((x) => x.devices.map((d) => [d.outcome, d.version]))).toEqual([
      [["unchanged", null]],
      [["published", 2]],
      [["published", 1]],
    ]);
    expect(inst.si("history").stdout).toMatch(/devel\/mako: published version 2, 4 files/);
  });

  it("prints the plan with --dry-run and writes nothing", async () => {
    farm.routes.set("/rootfs.version", { body: "20260103-1" });
    const before = readFileSync(join(inst.publish, "devel/mako/index.json"));
    const r = await inst.siAsync("import-images", "--dry-run");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("devel/mako: version 3, deltas from 2");
    expect(r.stdout).toContain("  ubports: http;");
    expect(readFileSync(join(inst.publish, "devel/mako/index.json"))).toEqual(before);
    expect(JSON.parse(inst.si("history", "--json").stdout)).toHaveLength(3);
  });
});
