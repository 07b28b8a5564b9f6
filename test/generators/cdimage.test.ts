import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { linkSync, mkdirSync, realpathSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateFile } from "../../src/generators/index.js";
import {
  cleanupAll,
  expectGenError,
  expectPublished,
  genInstance,
  listTar,
  makeEnv,
  poolListing,
  readJson,
  sha256,
  tarOf,
  tmpDir,
  tree,
  type GenInstance,
} from "./fixtures.js";

afterAll(cleanupAll);

/** A gzip'd tarball with distinct content. */
const gzTar = (seed: string) => tarOf(tree({ [`etc/${seed}`]: `${seed}\n` }), "gzip");

/** `<root>/<version>/<name>` files plus a SHA256SUMS with their real hashes. */
function addVersion(root: string, version: string, files: Record<string, Buffer>, opts: { good?: boolean; sums?: string } = {}): void {
  const dir = join(root, version);
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  const sums =
    opts.sums ??
    Object.entries(files)
      .map(([name, data]) => `${sha256(data)} *${name}\n`)
      .join("");
  writeFileSync(join(dir, "SHA256SUMS"), sums);
  if (opts.good) writeFileSync(join(dir, ".marked_good"), "");
}

/** The uncompressed tar inside a published .tar.xz. */
const unxz = (path: string) => execFileSync("xz", ["-dc", path], { maxBuffer: 1 << 28 });
const gunzip = (data: Buffer) => execFileSync("gzip", ["-dc"], { input: data, maxBuffer: 1 << 28 });

/** The error cases every cdimage generator shares (test_generate_file_cdimage_*). */
async function errorCases(g: GenInstance, generator: string, file: string, device = "test"): Promise<void> {
  const env = makeEnv(g, { device_name: device });
  const gen = (...args: string[]) => generateFile(g.ctx, generator, args, env);
  await expectGenError(gen(), `Cannot generate ${generator} for test/${device}: too few arguments`);
  await expectGenError(gen("/invalid/path", "xenial"), "cdimage path /invalid/path is not a directory");
  const root = tmpDir("si-cdimage-");
  await expectGenError(gen(root, "xenial"), "(it has no versions)");
  mkdirSync(join(root, "1234"));
  await expectGenError(gen(root, "xenial"), "1234: no SHA256SUMS");
  writeFileSync(join(root, "1234", "SHA256SUMS"), "");
  await expectGenError(gen(root, "xenial"), `1234: no ${file}`);
  const data = gzTar("a");
  writeFileSync(join(root, "1234", file), data);
  await expectGenError(gen(root, "xenial"), `1234: ${file} not in SHA256SUMS`);
  writeFileSync(join(root, "1234", "SHA256SUMS"), `${sha256(data)} *${file}\n`);
  await expectGenError(gen(root, "xenial", "import=good"), "1234: not marked good", "with import=good");
  await expectGenError(gen(root, "xenial", "import=bad"), "invalid import=bad");
  writeFileSync(join(root, "1234", "SHA256SUMS"), `${sha256(data)} *other-${file}.zsync\n`);
  await expectGenError(gen(root, "xenial"), "not in SHA256SUMS");
  // A source that does not match its SHA256SUMS line is not published (not checked by the reference).
  writeFileSync(join(root, "1234", "SHA256SUMS"), `${sha256("other")} *${file}\n`);
  await expectGenError(gen(root, "xenial"), `has SHA-256 ${sha256(data)}, but SHA256SUMS says ${sha256("other")}`);
  expect(env.version_detail).toEqual([]);
  expect(poolListing(g)).toEqual([]);
}

describe("cdimage-device-raw (test_generate_file_cdimage_device_raw)", () => {
  it("fails with the reason for every skipped version", async () => {
    const g = await genInstance();
    await errorCases(g, "cdimage-device-raw", "xenial-preinstalled-core-armhf.device.tar.gz");
  });

  it("maps devices to arches, recompresses without repacking, and reuses the pool file", async () => {
    const g = await genInstance();
    const root = tmpDir("si-cdimage-");
    const arches: Record<string, string> = {
      generic_x86: "i386",
      generic_i386: "i386",
      generic_amd64: "amd64",
      azure_amd64: "amd64.azure",
      plano: "amd64.plano",
      raspi2_armhf: "armhf.raspi2",
      generic_arm64: "arm64",
      mako: "armhf",
    };
    const files: Record<string, Buffer> = {};
    for (const arch of new Set(Object.values(arches))) files[`xenial-preinstalled-core-${arch}.device.tar.gz`] = gzTar(arch);
    addVersion(root, "1234", files, { good: true });
    const pub = realpathSync(g.config.publish_path);
    for (const [device, arch] of Object.entries(arches)) {
      const name = `xenial-preinstalled-core-${arch}.device.tar.gz`;
      const hash = sha256(files[name]);
      const env = makeEnv(g, { device_name: device });
      const path = await generateFile(g.ctx, "cdimage-device-raw", [root, "xenial", "import=good"], env);
      expect(path, device).toBe(join(pub, `pool/device-${hash}.tar.xz`));
      expect(env.version_detail).toEqual(["raw-device=1234"]);
    }
    const name = "xenial-preinstalled-core-amd64.azure.device.tar.gz";
    const path = join(pub, `pool/device-${sha256(files[name])}.tar.xz`);
    expectPublished(g, path);
    expect(unxz(path).equals(gunzip(files[name]))).toBe(true);
    expect(readJson(path.replace(".tar.xz", ".json"))).toEqual({
      generator: "cdimage-device-raw",
      version: "1234",
      version_detail: "raw-device=1234",
      series: "xenial",
      raw_device_path: join(root, "1234", name),
      raw_device_checksum: sha256(files[name]),
      device: "azure_amd64",
    });

    // Cached: not rewritten; the sidecar's version_detail wins over the computed one.
    const mtime = statSync(path).mtimeMs;
    const sidecar = readJson(path.replace(".tar.xz", ".json"));
    writeFileSync(path.replace(".tar.xz", ".json"), JSON.stringify({ ...sidecar, version_detail: "raw-device=renamed" }));
    const env = makeEnv(g, { device_name: "azure_amd64" });
    expect(await generateFile(g.ctx, "cdimage-device-raw", [root, "xenial"], env)).toBe(path);
    expect(env.version_detail).toEqual(["raw-device=renamed"]);
    expect(statSync(path).mtimeMs).toBe(mtime);
  });

  it("takes the newest qualifying version, ignoring current and pending", async () => {
    const g = await genInstance();
    const root = tmpDir("si-cdimage-");
    const file = "xenial-preinstalled-core-armhf.device.tar.gz";
    const [old, mid, broken] = [gzTar("old"), gzTar("mid"), gzTar("broken")];
    addVersion(root, "20160101", { [file]: old }, { good: true });
    addVersion(root, "20160102", { [file]: mid });
    addVersion(root, "20160103", { [file]: broken }, { sums: "" });
    addVersion(root, "pending", { [file]: gzTar("pending") }, { good: true });
    symlinkSync("20160103", join(root, "current"));
    const env = makeEnv(g);
    expect(await generateFile(g.ctx, "cdimage-device-raw", [root, "xenial"], env)).toMatch(
      new RegExp(`pool/device-${sha256(mid)}\\.tar\\.xz$`),
    );
    expect(env.version_detail).toEqual(["raw-device=20160102"]);
    expect(await generateFile(g.ctx, "cdimage-device-raw", [root, "xenial", "import=good"], env)).toMatch(
      new RegExp(`pool/device-${sha256(old)}\\.tar\\.xz$`),
    );
    expect(env.version_detail).toEqual(["raw-device=20160102", "raw-device=20160101"]);
  });
});

describe("cdimage-custom (test_generate_file_cdimage_custom)", () => {
  it("fails with the reason for every skipped version", async () => {
    const g = await genInstance();
    await errorCases(g, "cdimage-custom", "xenial-preinstalled-touch-armhf.custom.tar.gz");
  });

  it("maps devices to arches and recompresses without repacking", async () => {
    const g = await genInstance();
    const root = tmpDir("si-cdimage-");
    // azure_amd64 and plano are not in the custom map (§5.4.3): armhf.
    const arches: Record<string, string> = {
      generic_x86: "i386",
      generic_i386: "i386",
      generic_amd64: "amd64",
      generic_arm64: "arm64",
      frieza_arm64: "arm64",
      azure_amd64: "armhf",
    };
    const files: Record<string, Buffer> = {};
    for (const arch of new Set(Object.values(arches))) files[`xenial-preinstalled-pd-${arch}.custom.tar.gz`] = gzTar(arch);
    addVersion(root, "1234", files);
    for (const [device, arch] of Object.entries(arches)) {
      const name = `xenial-preinstalled-pd-${arch}.custom.tar.gz`;
      const env = makeEnv(g, { device_name: device });
      const path = await generateFile(g.ctx, "cdimage-custom", [root, "xenial", "product=pd"], env);
      expect(path, device).toMatch(new RegExp(`/pool/custom-${sha256(files[name])}\\.tar\\.xz$`));
      expect(env.version_detail).toEqual(["custom=1234"]);
      expectPublished(g, path!);
      expect(unxz(path!).equals(gunzip(files[name]))).toBe(true);
      expect(readJson(path!.replace(".tar.xz", ".json"))).toEqual({
        generator: "cdimage-custom",
        version: "1234",
        version_detail: "custom=1234",
        series: "xenial",
        custom_path: join(root, "1234", name),
        custom_checksum: sha256(files[name]),
      });
    }
  });
});

describe("cdimage-ubuntu (test_generate_file_cdimage_ubuntu)", () => {
  it("fails with the reason for every skipped version", async () => {
    const g = await genInstance();
    await errorCases(g, "cdimage-ubuntu", "xenial-preinstalled-touch-armhf.tar.gz");
  });

  /** A rootfs with the members the repack drops or rewrites. */
  function rootfs(): Buffer {
    const dir = tree({ "SWAP.swap": "swap", "etc/mtab": "mtab", "etc/hostname": "ubuntu\n", "bin/a": "binary" });
    linkSync(join(dir, "bin/a"), join(dir, "bin/b"));
    symlinkSync("a", join(dir, "bin/sh"));
    return tarOf(dir, "gzip", ["SWAP.swap", "bin", "etc"]);
  }

  it.each([
    ["generic_x86", "touch", "i386"],
    ["generic_x86", "pd", "i386"],
    ["generic_i386", "core", "i386"],
    ["generic_amd64", "core", "amd64"],
  ])("repacks the rootfs under system/ for %s with product %s", async (device, product, arch) => {
    const g = await genInstance();
    const root = tmpDir("si-cdimage-");
    const name = `xenial-preinstalled-${product}-${arch}.tar.gz`;
    const data = rootfs();
    addVersion(root, "20220101", { [name]: data });
    const env = makeEnv(g, { device_name: device });
    const path = await generateFile(g.ctx, "cdimage-ubuntu", [root, "xenial", `product=${product}`], env);
    expect(path).toBe(join(realpathSync(g.config.publish_path), `pool/ubuntu-${sha256(data)}.tar.xz`));
    expect(env.version_detail).toEqual(["ubuntu=20220101"]);
    expectPublished(g, path!);
    expect(readJson(path!.replace(".tar.xz", ".json"))).toEqual({
      generator: "cdimage-ubuntu",
      version: "20220101",
      version_detail: "ubuntu=20220101",
      series: "xenial",
      rootfs_path: join(root, "20220101", name),
      rootfs_checksum: sha256(data),
    });

    const members = listTar(path!);
    const names = members.map((m) => m.name);
    expect(names).not.toContain("system/SWAP.swap");
    expect(names.every((n) => n.startsWith("system/"))).toBe(true);
    const byName = new Map(members.map((m) => [m.name, m]));
    // Hard-link targets are archive paths and get the prefix too (whichever of a/b tar stored first).
    const links = members.filter((m) => m.type === "h");
    expect(links).toHaveLength(1);
    expect(["system/bin/a", "system/bin/b"].sort()).toEqual([links[0].name, links[0].link].sort());
    expect(byName.get("system/bin/sh")).toMatchObject({ type: "l", link: "a" });
    expect(byName.get("system/etc/mtab")).toMatchObject({ type: "l", link: "/proc/mounts", mode: "r--r--r--", owner: "0/0" });
    expect(names.filter((n) => n === "system/etc/mtab")).toHaveLength(1);
    expect(byName.get("system/lib/modules")).toMatchObject({ type: "d" });
    const android = product === "touch" || product === "pd";
    expect(byName.has("system/android")).toBe(android);
    expect(byName.get("system/vendor")?.link).toBe(android ? "/android/system/vendor" : undefined);
    expect(byName.has("system/writable")).toBe(product === "core");
    expect(byName.has("system/userdata")).toBe(product !== "core");
    expect(execFileSync("tar", ["-xOJf", path!, "system/etc/hostname"]).toString()).toBe("ubuntu\n");
  });

  it("does not leave a partial pool file when the source is not a gzip'd tarball", async () => {
    const g = await genInstance();
    const root = tmpDir("si-cdimage-");
    const name = "xenial-preinstalled-touch-armhf.tar.gz";
    addVersion(root, "1", { [name]: Buffer.from("not gzip at all") });
    await expectGenError(
      generateFile(g.ctx, "cdimage-ubuntu", [root, "xenial"], makeEnv(g)),
      "Cannot generate cdimage-ubuntu for test/test:",
    );
    expect(poolListing(g)).toEqual([]);
  });
});
