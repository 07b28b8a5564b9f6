/**
 * Issue 15 item 5, the demo's rough edges, on a demo made the way `npm start` makes it
 * (`si demo`, here with --root and --no-serve):
 *   (a) the first run leaves no etc/demo.conf.tmp;
 *   (b) a later `si --config etc/demo.conf import-images` works offline (the first run's build
 *       server is gone by then), and `si demo --next-build` publishes build 3 in one command,
 *       which a device on build 2 gets as a delta;
 *   (c) the device tarball carries partitions/recovery.img, an Android boot image whose ramdisk
 *       holds the demo's archive-master keyring, so `ubuntu-device-flash touch --bootstrap`
 *       finds a recovery (client-protocol §10.2) that trusts the demo's image-master.
 * The demo reuses keys it finds: the cached test keys spare the RSA-4096 generation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { compareTrees } from "../helpers/apply-delta.js";
import { gpgVerify, unpackKeyring } from "../helpers/device-gpg.js";
import { runDeviceClient, type DeviceClientOptions } from "../helpers/device-client.js";
import { startDemo, stopDemo, type RunningDemo } from "../helpers/demo-process.js";
import { TEST_KEYS, runSiAsync } from "../helpers/instance.js";

const root = mkdtempSync(join(tmpdir(), "si-demo-edges-"));
const scratch = mkdtempSync(join(tmpdir(), "si-demo-edges-dev-"));
const conf = join(root, "etc/demo.conf");
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Every path under `dir`, relative to it. */
function walk(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? [prefix + e.name + "/", ...walk(join(dir, e.name), `${prefix}${e.name}/`)] : [prefix + e.name],
  );
}

const index = () => JSON.parse(readFileSync(join(root, "www/demo/generic/index.json"), "utf8")) as IndexDoc;

/** The system a device must end with: full image `version`'s files extracted in order. */
function reference(version: number): string {
  const img = index().images.find((i) => i.type === "full" && i.version === version)!;
  const dir = mkdtempSync(join(scratch, `ref${version}-`));
  for (const f of [...img.files].sort((a, b) => a.order - b.order))
    execFileSync("tar", ["--numeric-owner", "-xJf", join(root, "www", f.path), "-C", dir]);
  return join(dir, "system");
}

let http: number;
let https: number;
let firstRun: { status: number; stdout: string; stderr: string };

beforeAll(async () => {
  [http, https] = [await freePort(), await freePort()];
  cpSync(TEST_KEYS, join(root, "secret/gpg/keys"), { recursive: true });
  firstRun = await runSiAsync(["demo", "--root", root, "--no-serve", "--http-port", String(http), "--https-port", String(https)]);
});

describe("(a) the first run", () => {
  it("completes and leaves no temporary file behind", () => {
    expect(firstRun.status, firstRun.stdout + firstRun.stderr).toBe(0);
    expect(readdirSync(join(root, "etc"))).toEqual(["demo.conf"]);
    expect(walk(root).filter((p) => /\.tmp\b|\.tmp-/.test(p))).toEqual([]);
  });
});

describe("(b) later imports", () => {
  it("a later `si --config etc/demo.conf import-images` works offline: nothing new, exit 0", async () => {
    const r = await runSiAsync(["--config", conf, "import-images"]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/connection refused|failed/i);
    expect(r.stdout).toContain("nothing new");
    // Offline by construction: no generator of the demo channel names a URL.
    expect(readFileSync(conf, "utf8")).not.toMatch(/^file_\w+\s*=.*:\/\//m);
    expect(
      index()
        .images.filter((i) => i.type === "full")
        .map((i) => i.version),
    ).toEqual([1, 2]);
  });

  it("`si demo --next-build` publishes build 3: a full image and a delta 3<-2", async () => {
    const r = await runSiAsync(["demo", "--root", root, "--next-build"]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("Demo build 3 published as version 3 of demo/generic");
    const images = index().images.map((i) => `${i.type} ${i.version}${i.base ? `<-${i.base}` : ""}`);
    expect(images).toEqual(["full 1", "full 2", "delta 2<-1", "full 3", "delta 3<-2"]);
    const full3 = index().images.find((i) => i.type === "full" && i.version === 3)!;
    expect(full3.version_detail).toMatch(/^custom=0003,/);
    // And an operator's plain import afterwards still has nothing to do.
    const again = await runSiAsync(["--config", conf, "import-images"]);
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(index().images).toHaveLength(5);
  });
});

describe("served", () => {
  let demo: RunningDemo;
  let device: (o: Partial<DeviceClientOptions>) => ReturnType<typeof runDeviceClient>;

  beforeAll(async () => {
    demo = await startDemo(root, http, https);
    const ca = readFileSync(join(root, "secret/tls/cert.pem"));
    device = (o) =>
      runDeviceClient({
        host: "127.0.0.1",
        httpPort: http,
        httpsPort: https,
        ca,
        channel: "demo",
        device: "generic",
        buildNumber: 0,
        archiveMaster: join(root, "secret/gpg/keyrings/archive-master.tar.xz"),
        workDir: scratch,
        ...o,
      });
  });
  afterAll(async () => {
    if (demo?.child.exitCode === null) await stopDemo(demo.child);
  });

  describe("(b) build 3 reaches devices", () => {
    it("the ready message names the newest build and the one command that publishes the next", () => {
      expect(demo.output()).toContain("newest build 3, with a delta 3<-2");
      expect(demo.output()).toMatch(
        /Publish build 4 \(from the demo's build farm in .*state\/demo-farm\): npx si demo --root \S+ --next-build/,
      );
    });

    it("a device on build 2 upgrades to build 3 with the delta", async () => {
      const run = await device({ buildNumber: 2, system: reference(2) });
      expect(run.outcome).toBe("applied");
      expect(run.ubuntuCommand, `path ${run.path}: ${run.ubuntuCommand}`).toMatch(
        /update custom-[0-9a-f]+\.delta-custom-[0-9a-f]+\.tar\.xz/,
      );
      expect(run.ubuntuCommand).not.toContain("format system");
      expect(run.buildNumber).toBe(3);
      expect(compareTrees(run.systemDir, reference(3))).toEqual([]);
    });
  });

  describe("(c) ubuntu-device-flash touch --bootstrap", () => {
    let recoveryKeyring: string;

    /**
     * What ubuntu-device-flash does before fastboot (goget-ubuntu-touch touch.go, client-protocol
     * §10.2): channels.json, the device's index, the newest full image, `{server}{path}` of each
     * file and the two gpg keyrings; then the first downloaded .xz holding a member whose name
     * contains "recovery.img" is the recovery it flashes.
     */
    async function udfDownloads(server: string): Promise<{ path: string; file: string }[]> {
      const get = async (path: string) => {
        const res = await fetch(server + path);
        expect(res.status, server + path).toBe(200);
        return Buffer.from(await res.arrayBuffer());
      };
      const channels = JSON.parse((await get("/channels.json")).toString()) as Record<
        string,
        { devices: Record<string, { index: string }> }
      >;
      const idx = JSON.parse((await get(channels.demo.devices.generic.index)).toString()) as IndexDoc;
      const newest = idx.images.filter((i) => i.type === "full").sort((a, b) => b.version - a.version)[0];
      const paths = [
        ...newest.files.flatMap((f) => [f.path, f.signature]),
        "/gpg/image-master.tar.xz",
        "/gpg/image-master.tar.xz.asc",
        "/gpg/image-signing.tar.xz",
        "/gpg/image-signing.tar.xz.asc",
      ];
      const dir = mkdtempSync(join(scratch, "udf-dl-"));
      const out = [];
      for (const path of paths) {
        const file = join(dir, path.replaceAll("/", "_"));
        writeFileSync(file, await get(path));
        out.push({ path, file });
      }
      return out;
    }

    it("finds exactly one recovery image: partitions/recovery.img of the device tarball", async () => {
      const downloads = await udfDownloads(`http://127.0.0.1:${http}`);
      const holders = downloads
        .filter((d) => d.path.endsWith(".xz"))
        .flatMap((d) =>
          execFileSync("tar", ["-tJf", d.file], { encoding: "utf8" })
            .split("\n")
            .filter((m) => m.includes("recovery.img"))
            .map((m) => ({ ...d, member: m })),
        );
      expect(holders.map((h) => h.member)).toEqual(["partitions/recovery.img"]);
      expect(holders[0].path).toMatch(/^\/pool\/device-[0-9a-f]+\.tar\.xz$/);

      const dir = mkdtempSync(join(scratch, "udf-recovery-"));
      execFileSync("tar", ["-xJf", holders[0].file, "-C", dir, "partitions/recovery.img"]);
      const img = join(dir, "partitions/recovery.img");

      // An Android boot image to abootimg and to AOSP's unpack_bootimg alike.
      const info = execFileSync("abootimg", ["-i", img], { encoding: "utf8" });
      expect(info).toMatch(/page size\s+= 2048 bytes/);
      expect(info).toMatch(/ramdisk size\s+= [1-9]\d* bytes/);
      const unpacked = join(dir, "unpacked");
      execFileSync("unpack_bootimg", ["--boot_img", img, "--out", unpacked], { stdio: "ignore" });

      // The ramdisk: gzip'd newc cpio, with the keyring where the recovery's upgrader reads it.
      const ramdisk = join(dir, "ramdisk");
      mkdirSync(ramdisk);
      execFileSync("sh", ["-c", `gzip -dc '${join(unpacked, "ramdisk")}' | cpio -idm --quiet`], { cwd: ramdisk });
      recoveryKeyring = join(ramdisk, "etc/system-image/archive-master.tar.xz");
      expect(readFileSync(recoveryKeyring)).toEqual(readFileSync(join(root, "secret/gpg/keyrings/archive-master.tar.xz")));
      expect(readFileSync(`${recoveryKeyring}.asc`)).toEqual(readFileSync(join(root, "secret/gpg/keyrings/archive-master.tar.xz.asc")));
    });

    it("the recovery's archive-master verifies the image-master keyring the demo publishes", () => {
      expect(recoveryKeyring, "the recovery image was not found").toBeDefined();
      const keys = unpackKeyring(recoveryKeyring, scratch);
      expect(keys.json?.type).toBe("archive-master");
      const www = join(root, "www/gpg");
      const served = gpgVerify(join(www, "image-master.tar.xz.asc"), join(www, "image-master.tar.xz"), [keys.gpg!]);
      expect(served.ok, served.output).toBe(true);
      const self = gpgVerify(`${recoveryKeyring}.asc`, recoveryKeyring, [keys.gpg!]);
      expect(self.ok, self.output).toBe(true);
    });

    it("a device whose only trust root is that recovery's keyring installs the newest build", async () => {
      expect(recoveryKeyring, "the recovery image was not found").toBeDefined();
      const run = await device({ buildNumber: 0, archiveMaster: recoveryKeyring });
      expect(run.outcome).toBe("applied");
      expect(run.buildNumber).toBe(3);
    });
  });
});

describe("a demo made by an older si demo", () => {
  it("--next-build says why it cannot import and how to start over", async () => {
    const old = mkdtempSync(join(tmpdir(), "si-demo-old-"));
    try {
      mkdirSync(join(old, "etc"));
      mkdirSync(join(old, "www"));
      writeFileSync(
        join(old, "etc/demo.conf"),
        `[global]\nbase_path = ${old}\npublic_fqdn = 127.0.0.1\nchannels = demo\n\n[channel_demo]\ntype = auto\nfiles = ubports, version\n` +
          "file_ubports = http;http://127.0.0.1:9/rootfs.tar.xz;name=ubports,monitor=http://127.0.0.1:9/rootfs.version\nfile_version = version\n",
      );
      const r = await runSiAsync(["demo", "--root", old, "--next-build"]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("was written by an older `si demo` whose build farm ran only during its first run");
      expect(r.stderr).toContain("delete www/, state/ and");
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  });
});
