import { afterAll, describe, expect, it } from "vitest";
import { readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { generateFile } from "../../src/generators/index.js";
import {
  cleanupAll,
  tarHeaders,
  expectGenError,
  expectPublished,
  genInstance,
  listTar,
  makeEnv,
  poolListing,
  readJson,
  sha256,
  tarMember,
} from "./fixtures.js";

afterAll(cleanupAll);

const MEMBER = "system/usr/share/system-image/archive-master.tar.xz";

describe("keyring generator (test_generate_file_keyring)", () => {
  it("offers nothing without new files, and fails without a name or with an unknown keyring", async () => {
    const g = await genInstance({ keyrings: true });
    const env = makeEnv(g);
    expect(await generateFile(g.ctx, "keyring", ["archive-master"], env)).toBeNull();
    env.new_files.push("x");
    await expectGenError(generateFile(g.ctx, "keyring", [], env), "Cannot generate keyring for test/test: too few arguments");
    await expectGenError(
      generateFile(g.ctx, "keyring", ["invalid"], env),
      `keyring ${join(g.config.gpg_keyring_path, "invalid.tar.xz")} does not exist`,
    );
    expect(env.version_detail).toEqual([]);
    expect(poolListing(g)).toEqual([]);
  });

  it("publishes pool/keyring-<sha256(sha256(tar)/sha256(asc))>.tar.xz holding the keyring as archive-master, owned by root", async () => {
    const g = await genInstance({ keyrings: true });
    const base = join(g.config.gpg_keyring_path, "image-master");
    const tarball = readFileSync(`${base}.tar.xz`);
    const signature = readFileSync(`${base}.tar.xz.asc`);
    const hash = sha256(`${sha256(tarball)}/${sha256(signature)}`);
    const env = makeEnv(g, { new_files: ["x"] });
    const before = Math.floor(Date.now() / 1000);
    const path = await generateFile(g.ctx, "keyring", ["image-master"], env);
    expect(path).toBe(join(realpathSync(g.config.publish_path), `pool/keyring-${hash}.tar.xz`));
    expect(env.version_detail).toEqual(["keyring=image-master"]);
    expectPublished(g, path!);

    // Whatever keyring is named, the members say archive-master (§5.4.6 step 7).
    const members = listTar(path!);
    expect(members.map((m) => [m.type, m.name, m.mode, m.owner])).toEqual([
      ["-", MEMBER, "rw-r--r--", "0/0"],
      ["-", `${MEMBER}.asc`, "rw-r--r--", "0/0"],
    ]);
    for (const h of await tarHeaders(path!)) {
      expect(h).toMatchObject({ uid: 0, gid: 0, uname: "root", gname: "root", mode: 0o644 });
      expect(h.mtime).toBeGreaterThanOrEqual(before);
    }
    expect(tarMember(path!, MEMBER).equals(tarball)).toBe(true);
    expect(tarMember(path!, `${MEMBER}.asc`).equals(signature)).toBe(true);
    expect(readJson(join(g.pool, `keyring-${hash}.json`))).toEqual({
      generator: "keyring",
      path: base,
      version: hash,
      version_detail: "keyring=image-master",
    });

    // Cached: same path, untouched, version_detail appended again.
    const mtime = statSync(path!).mtimeMs;
    const env2 = makeEnv(g, { new_files: ["x"] });
    expect(await generateFile(g.ctx, "keyring", ["image-master"], env2)).toBe(path);
    expect(env2.version_detail).toEqual(["keyring=image-master"]);
    expect(statSync(path!).mtimeMs).toBe(mtime);
  });
});
