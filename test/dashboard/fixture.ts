/**
 * An instance with a history worth showing, built with the real CLI against a build farm on
 * 127.0.0.1 (the importer's fixtures): channel `devel` with devices `good` and `bad`;
 *   run 1: both publish version 1;
 *   run 2: the rootfs changes, `good` publishes version 2 (with a delta), `bad` fails (404);
 * then `good` version 2 is re-tagged (version 3, tag OTA-7) and phased to 40 %, and `good`
 * gets a device keyring that expires in 20 days (the dashboard must warn).
 */
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import { Tree } from "../../src/tree/index.js";
import { makeInstance, type Instance } from "../helpers/instance.js";
import { makeDeviceTree, makeRootfsV1, makeRootfsV2, serveInputs, tarXz, tmp, type InputServer } from "../importer/fixtures.js";

export interface FleetFixture {
  inst: Instance;
  config: Config;
  farm: InputServer;
  /** The error the failed import recorded for devel/bad. */
  failure: RegExp;
  close(): Promise<void>;
}

export async function makeFleetInstance(): Promise<FleetFixture> {
  const farm = await serveInputs();
  const src = tmp("si-admin-inputs-");
  makeRootfsV1(join(src, "v1"), 200);
  makeRootfsV2(join(src, "v1"), join(src, "v2"));
  makeDeviceTree(join(src, "device"));
  const rootfs1 = tarXz(join(src, "v1"), join(src, "rootfs-v1.tar.xz"), ["system"]);
  const rootfs2 = tarXz(join(src, "v2"), join(src, "rootfs-v2.tar.xz"), ["system"]);
  const device = tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"]);
  farm.routes.set("/rootfs.tar.xz", { file: rootfs1 });
  farm.routes.set("/rootfs.version", { body: "1" });
  farm.routes.set("/device.tar.xz", { file: device });
  farm.routes.set("/device.version", { body: "1" });
  farm.routes.set("/bad-device.tar.xz", { file: device });
  farm.routes.set("/bad-device.version", { body: "1" });
  const inst = makeInstance({
    extraConfig: [
      "http_timeout = 5",
      "http_retries = 0",
      "device_signing_expiry_days = 20",
      "channels = devel",
      "[channel_devel]",
      "type = auto",
      "files = ubports, device,bad, device, version",
      `file_ubports = http;${farm.url}/rootfs.tar.xz;name=ubports,monitor=${farm.url}/rootfs.version`,
      `file_device,bad = http;${farm.url}/bad-device.tar.xz;name=device,monitor=${farm.url}/bad-device.version`,
      `file_device = http;${farm.url}/device.tar.xz;name=device,monitor=${farm.url}/device.version`,
      "file_version = version",
      "",
    ].join("\n"),
  });
  expect(inst.si("generate-keyrings").status).toBe(0);
  const config = await loadConfig(inst.config);
  const tree = new Tree(config);
  await tree.createChannel("devel");
  await tree.createDevice("devel", "bad");
  await tree.createDevice("devel", "good");
  for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) await tree.publishKeyring(k);
  for (const ext of [".tar.xz", ".tar.xz.asc"])
    copyFileSync(join(inst.keyrings, `device-signing${ext}`), join(inst.publish, `devel/good/device-signing${ext}`));
  await tree.setDeviceKeyring("devel", "good", "devel/good/device-signing.tar.xz");

  const first = await inst.siAsync("import-images");
  expect(first.status, first.stdout + first.stderr).toBe(0);
  farm.routes.set("/rootfs.tar.xz", { file: rootfs2 });
  farm.routes.set("/rootfs.version", { body: "2" });
  farm.routes.set("/bad-device.tar.xz", { status: 404 });
  farm.routes.set("/bad-device.version", { body: "2" });
  const second = await inst.siAsync("import-images");
  expect(second.status, second.stdout + second.stderr).toBe(1);
  for (const args of [
    ["tag-image", "devel", "good", "2", "OTA-7"],
    ["set-phased-percentage", "devel", "good", "3", "40"],
  ]) {
    const r = await inst.siAsync(...args);
    expect(r.status, `${args.join(" ")}: ${r.stdout}${r.stderr}`).toBe(0);
  }
  return { inst, config, farm, failure: /Cannot generate http for devel\/bad: .*HTTP 404/, close: () => farm.close() };
}
