import { afterAll, describe, expect, it } from "vitest";
import { existsSync, realpathSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { generateFile } from "../../src/generators/index.js";
import { cleanupAll, expectPublished, genInstance, listTar, makeEnv, readJson, tarMember } from "./fixtures.js";

afterAll(cleanupAll);

describe("version generator (test_generate_file_version)", () => {
  it("offers nothing while no file of the image is new", async () => {
    const g = await genInstance();
    const env = makeEnv(g);
    expect(await generateFile(g.ctx, "version", [], env)).toBeNull();
    expect(env.version_detail).toEqual([]);
    expect(existsSync(env.device)).toBe(false);
  });

  it("writes <device>/version-N.tar.xz with channel.ini, its sidecar, all signed; reuses it; recreates the device dir", async () => {
    const g = await genInstance();
    const env = makeEnv(g, { new_files: ["abc"], version_detail: ["ubports=1", "keyring=archive-master"] });
    const path = await generateFile(g.ctx, "version", [], env);
    expect(path).toBe(join(realpathSync(g.config.publish_path), "test/test/version-1234.tar.xz"));
    expect(env.version_detail).toEqual(["ubports=1", "keyring=archive-master", "version=1234"]);
    expectPublished(g, path!);
    expect(g.ctx.checksums.get(path!)?.size).toBe(statSync(path!).size);

    const members = listTar(path!);
    expect(members.map((m) => [m.type, m.name, m.link])).toEqual([
      ["-", "system/etc/ubuntu-build", undefined],
      ["-", "system/etc/system-image/channel.ini", undefined],
      ["d", "system/etc/system-image/config.d", undefined],
      ["l", "system/etc/system-image/config.d/00_default.ini", "../client.ini"],
      ["l", "system/etc/system-image/config.d/01_channel.ini", "../channel.ini"],
    ]);
    expect(members[2].mode).toBe("rwxrwxr-x");
    expect(tarMember(path!, "system/etc/ubuntu-build").toString()).toBe("1234\n");
    expect(tarMember(path!, "system/etc/system-image/channel.ini").toString()).toBe(
      "[service]\nbase: system-image.example.net\nhttp_port: 880\nhttps_port: 8443\nchannel: test\ndevice: test\nbuild_number: 1234\n" +
        "version_detail: ubports=1,keyring=archive-master,version=1234\n",
    );
    expect(readJson(join(env.device, "version-1234.json"))).toEqual({
      "channel.ini": { channel: "test", device: "test", version: "1234", version_detail: "ubports=1,keyring=archive-master,version=1234" },
      generator: "version",
      version: 1234,
      version_detail: "version=1234",
    });

    // Second call: same path, not rewritten, version= appended again.
    const before = statSync(path!).mtimeMs;
    const env2 = makeEnv(g, { new_files: ["abc"] });
    expect(await generateFile(g.ctx, "version", [], env2)).toBe(path);
    expect(env2.version_detail).toEqual(["version=1234"]);
    expect(statSync(path!).mtimeMs).toBe(before);

    // The device directory is recreated when it was deleted.
    rmSync(env.device, { recursive: true });
    expect(await generateFile(g.ctx, "version", [], makeEnv(g, { new_files: ["abc"] }))).toBe(path);
    expectPublished(g, path!);
  });

  it("fails with the config named when the public_* settings are missing", async () => {
    const g = await genInstance();
    delete g.config.public_fqdn;
    const env = makeEnv(g, { new_files: ["abc"] });
    const err = await generateFile(g.ctx, "version", [], env).catch((e: Error) => e);
    expect(String(err)).toMatch(/Cannot generate version for test\/test: .*public_fqdn not set/);
    expect(existsSync(join(env.device, "version-1234.tar.xz"))).toBe(false);
  });
});
