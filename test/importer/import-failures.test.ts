/**
 * A broken remote cancels only its device's image: one clear line per failed device, a
 * non-zero exit, and a tree in which nothing changed for that device and every signature
 * still verifies. Other devices go on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { Tree } from "../../src/tree/index.js";
import { GpgHome } from "../helpers/gpg.js";
import { makeInstance, type Instance } from "../helpers/instance.js";
import { makeDeviceTree, makeRootfsV1, serveInputs, tarXz, tmp, type InputServer } from "./fixtures.js";

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
/** Every file of the tree with its sha256, for "byte-identical" checks. */
function snapshot(root: string): Record<string, string> {
  return Object.fromEntries(walk(root).map((f) => [relative(root, f), createHash("sha256").update(readFileSync(f)).digest("hex")]));
}

describe("import-images with a broken remote", () => {
  let inst: Instance;
  let farm: InputServer;
  let deviceTar: string;
  let serial = 0;
  const baseConfig = (farmUrl: string, extra: string) =>
    [
      "http_timeout = 1",
      "http_retries = 0",
      "channels = devel",
      "[channel_devel]",
      "type = auto",
      "files = ubports, device,bad, device, version",
      `file_ubports = http;${farmUrl}/rootfs.tar.xz;name=ubports,monitor=${farmUrl}/rootfs.version`,
      `file_device,bad = ${extra}`,
      `file_device = http;${farmUrl}/device.tar.xz;name=device,monitor=${farmUrl}/device.version`,
      "file_version = version",
      "",
    ].join("\n");

  beforeAll(async () => {
    farm = await serveInputs();
    const src = tmp("si-fail-inputs-");
    makeRootfsV1(join(src, "v1"), 200);
    makeDeviceTree(join(src, "device"));
    farm.routes.set("/rootfs.tar.xz", { file: tarXz(join(src, "v1"), join(src, "rootfs.tar.xz"), ["system"]) });
    farm.routes.set("/rootfs.version", { body: "1" });
    deviceTar = tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"]);
    farm.routes.set("/device.tar.xz", { file: deviceTar });
    farm.routes.set("/device.version", { body: "1" });
    inst = makeInstance({
      extraConfig: baseConfig(farm.url, `http;${farm.url}/broken.tar.xz;name=device,monitor=${farm.url}/broken.version`),
    });
    expect(inst.si("generate-keyrings").status).toBe(0);
    const tree = new Tree(await loadConfig(inst.config));
    await tree.createChannel("devel");
    await tree.createDevice("devel", "bad");
    await tree.createDevice("devel", "good");
  });
  afterAll(() => farm?.close());

  const cases: [string, Parameters<InputServer["routes"]["set"]>[1], RegExp][] = [
    ["404", { status: 404 }, /HTTP 404/],
    ["500", { status: 500 }, /HTTP 500/],
    ["an HTML page", { mode: "html" }, /HTML page/],
    ["a truncated body", { mode: "truncate" }, /truncated|terminated|closed|aborted/i],
    ["no answer (timeout)", { mode: "hang" }, /timed out/],
  ];

  it.each(cases)("%s: one error line for devel/bad, devel/good published, bad's files untouched", async (_name, route, cause) => {
    farm.routes.set("/broken.tar.xz", route.status || route.mode ? { ...route, file: deviceTar } : route);
    farm.routes.set("/broken.version", { body: String(++serial) }); // a new version: forces a download
    const badIndex = join(inst.publish, "devel/bad/index.json");
    const before = readFileSync(badIndex);
    const r = await inst.siAsync("import-images");
    expect(r.status).toBe(1);
    const errors = r.stdout.split("\n").filter((l) => l.includes('"level":"error"'));
    expect(errors, r.stdout).toHaveLength(1);
    const line = JSON.parse(errors[0]) as { msg: string; channel: string; device: string };
    expect([line.channel, line.device]).toEqual(["devel", "bad"]);
    expect(line.msg).toMatch(/^import failed, nothing published: Cannot generate http for devel\/bad: /);
    expect(line.msg).toMatch(cause);
    expect(line.msg).toContain("/broken.tar.xz");
    expect(readFileSync(badIndex)).toEqual(before);
    const good = JSON.parse(readFileSync(join(inst.publish, "devel/good/index.json"), "utf8")) as IndexDoc;
    expect(good.images.map((i: { version: number }) => i.version)).toEqual([1]);
    // Nothing half-downloaded or orphaned is left in the pool.
    expect(walk(inst.publish).filter((f) => /\.tmp|\/\.[^/]+$/.test(f))).toEqual([]);
    const orphans = await new Tree(await loadConfig(inst.config)).listOrphanedFiles();
    expect(orphans).toEqual([]);
  });

  it("every signature in the tree still verifies after the failures", () => {
    const gpg = new GpgHome().importKey(join(inst.keys, "image-signing/public.asc"));
    for (const sig of walk(inst.publish).filter((f) => f.endsWith(".asc"))) {
      const r = gpg.verify(sig, sig.slice(0, -4));
      expect(r.ok, `${sig}: ${r.output}`).toBe(true);
    }
  });

  it("a remote system-image tree with a signature from the wrong keyring imports nothing (verify=)", async () => {
    // The remote is this instance's own published tree; the keyring given to verify= is the
    // device-signing one, whose key never signed it.
    farm.root = inst.publish;
    writeFileSync(
      inst.config,
      readFileSync(inst.config, "utf8").replace(
        /file_device,bad = .*/,
        `file_device,bad = remote-system-image;${farm.url};devel;device;device=good,verify=${join(inst.keyrings, "device-signing.tar.xz")}`,
      ),
    );
    const before = snapshot(inst.publish);
    const r = await inst.siAsync("import-images");
    expect(r.status).toBe(1);
    const errors = r.stdout.split("\n").filter((l) => l.includes('"level":"error"'));
    expect(errors, r.stdout).toHaveLength(1);
    expect(errors[0]).toMatch(/devel\/bad: .*(signature|Bad signature)/i);
    expect(snapshot(inst.publish)).toEqual(before);
    // With the right keyring the same remote imports.
    writeFileSync(inst.config, readFileSync(inst.config, "utf8").replace("device-signing.tar.xz", "image-signing.tar.xz"));
    const ok = await inst.siAsync("import-images");
    expect(ok.status, ok.stdout).toBe(0);
    const bad = JSON.parse(readFileSync(join(inst.publish, "devel/bad/index.json"), "utf8")) as IndexDoc;
    expect(bad.images.map((i: { version: number }) => i.version)).toEqual([1]);
  });
});
