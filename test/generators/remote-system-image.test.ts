import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join, normalize } from "node:path";
import { dumpPyJson } from "../../src/format/pyjson.js";
import { generateFile } from "../../src/generators/index.js";
import { loadPublicKeyFile } from "../../src/pgp/keys.js";
import { writeKeyringTarball } from "../../src/pgp/keyring.js";
import { bytes, cleanup as cleanupBootimg, makeRamdisk, mkbootimg, tmp, unpackBootimg } from "../archive/bootimg-fixtures.js";
import {
  cleanupAll,
  expectGenError,
  expectPublished,
  expectSigned,
  genInstance,
  makeEnv,
  poolListing,
  routes,
  serve,
  sha256,
  tarMember,
  tarOf,
  readJson,
  tree,
  xzTarball,
  type GenInstance,
  type TestServer,
} from "./fixtures.js";

/** The pool without catalogue sidecars (issue 19: written by publishPoolFile for inspected images). */
const imageListing = (g: GenInstance) => poolListing(g).filter((n) => !n.endsWith(".catalogue.gz"));

afterAll(() => {
  cleanupAll();
  cleanupBootimg();
});

const RECOVERY = "partitions/recovery.img";

interface Remote {
  r: GenInstance;
  server: TestServer;
  aa: Buffer;
  device: Buffer;
  recovery: Buffer;
  /** Its image-signing keyring: what `verify=` trusts. */
  keyring: string;
}

/**
 * A second instance of our own tree, served over HTTP: channels.json, indexes, pool files,
 * sidecars, every one signed by its image-signing key, the way our server publishes them.
 */
async function makeRemote(): Promise<Remote> {
  const r = await genInstance({ keyrings: true });
  const root = r.config.publish_path;
  const put = async (rel: string, data: Buffer | string) => {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, data);
    await r.ctx.signer.signFile("image-signing", path);
  };
  const entry = (path: string, data: Buffer, order: number) => ({
    checksum: sha256(data),
    order,
    path,
    signature: `${path}.asc`,
    size: data.length,
  });
  const full = (version: number, files: object[]) => ({ type: "full", version, description: "", files });

  const aa = xzTarball("a-a\n");
  const old = xzTarball("old\n");
  const src = xzTarball("source\n");
  const recovery = mkbootimg(bytes(20_000, 3), makeRamdisk("etc", "gzip")).image;
  const device = tarOf(tree({ [RECOVERY]: recovery, "partitions/boot.img": bytes(5000, 4), "system/etc/device": "d\n" }), "xz", [
    "partitions",
    "system",
  ]);
  const noRecovery = tarOf(tree({ "partitions/boot.img": bytes(5000, 5) }), "xz");
  await put("pool/a-a.tar.xz", aa);
  await put("pool/a-a.json", dumpPyJson({ generator: "http", url: "http://x/", version: "1", version_detail: "a=1" }));
  await put("pool/a-old.tar.xz", old);
  await put("pool/a-src.tar.xz", src);
  await put("pool/device-d.tar.xz", device);
  await put("pool/device-n.tar.xz", noRecovery);

  const indexes: Record<string, object[]> = {
    test: [
      full(1, [entry("/pool/a-old.tar.xz", old, 0)]),
      full(2, [entry("/pool/device-d.tar.xz", device, 0), entry("/pool/a-a.tar.xz", aa, 1)]),
      { type: "delta", version: 3, base: 2, description: "", files: [entry("/pool/a-old.tar.xz", old, 0)] },
    ],
    source: [full(1, [entry("/pool/a-src.tar.xz", src, 0)])],
    empty: [],
    nodev: [full(1, [entry("/pool/device-n.tar.xz", noRecovery, 0)])],
    badsum: [full(1, [{ ...entry("/pool/a-a.tar.xz", aa, 0), checksum: "0".repeat(64) }])],
    escape: [full(1, [entry("/../../escape-x.tar.xz", aa, 0)])],
  };
  const devices: Record<string, { index: string }> = {};
  for (const [dev, images] of Object.entries(indexes)) {
    devices[dev] = { index: `/test/${dev}/index.json` };
    await put(`test/${dev}/index.json`, dumpPyJson({ global: { generated_at: "Mon Jan 03 10:00:00 UTC 2022" }, images } as never));
  }
  await put(
    "channels.json",
    dumpPyJson({
      test: { devices },
      nodevices: { hidden: true },
      noindex: { devices: { test: { keyring: { path: "/x", signature: "/x.asc" } } } },
    }),
  );
  const server = await serve({}, (req, res) => staticFile(root, req, res));
  return { r, server, aa, device, recovery, keyring: join(r.config.gpg_keyring_path, "image-signing.tar.xz") };
}

/** A tiny static server over a publish tree. */
function staticFile(root: string, req: IncomingMessage, res: ServerResponse): boolean {
  const path = normalize(join(root, decodeURIComponent((req.url ?? "/").split("?")[0])));
  if (!path.startsWith(root + "/") || !existsSync(path) || !statSync(path).isFile()) return false;
  const data = readFileSync(path);
  res.writeHead(200, { "content-length": data.length });
  res.end(data);
  return true;
}

describe("remote-system-image generator (test_generate_file_remote_system_image)", () => {
  let remote: Remote;
  let g: GenInstance;
  beforeAll(async () => {
    remote = await makeRemote();
  });
  afterAll(async () => {
    await remote.server.close();
  });
  beforeEach(async () => {
    g = await genInstance({ keyrings: true });
  });
  afterEach(() => {
    remote.server.routes.clear();
  });

  const run = (args: string[], env = makeEnv(g)) => generateFile(g.ctx, "remote-system-image", [remote.server.url, ...args], env);
  const local = (rel: string) => join(realpathSync(g.config.publish_path), rel);

  it("imports the first file with that prefix of the highest full image, signed here, with its sidecar", async () => {
    const env = makeEnv(g);
    const path = await run(["test", "a"], env);
    expect(path).toBe(local("pool/a-a.tar.xz"));
    expect(readFileSync(path!).equals(remote.aa)).toBe(true);
    expect(env.version_detail).toEqual(["a=1"]);
    expectPublished(g, path!);
    // The upstream's sidecar fields are kept, plus our owner record, signed here.
    expect(readJson(local("pool/a-a.json"))).toEqual({
      generator: "http",
      url: "http://x/",
      version: "1",
      version_detail: "a=1",
      origin: {
        generator: "remote-system-image",
        channel: "test",
        device: "test",
        url: `${remote.server.url}/pool/a-a.tar.xz`,
        base: remote.server.url,
        upstream_channel: "test",
        upstream_device: "test",
        sha256: sha256(remote.aa),
        keyring: "",
        verified: false,
      },
    });
    expect(g.ctx.checksums.get(path!)).toEqual({ sha256: sha256(remote.aa), size: remote.aa.length });
    expect(imageListing(g)).toEqual(["a-a.json", "a-a.json.asc", "a-a.tar.xz", "a-a.tar.xz.asc"]);

    // Cached: no download; the local sidecar supplies version_detail.
    const downloads = remote.server.hitsOf("/pool/a-a.tar.xz");
    const env2 = makeEnv(g);
    expect(await run(["test", "a"], env2)).toBe(path);
    expect(env2.version_detail).toEqual(["a=1"]);
    expect(remote.server.hitsOf("/pool/a-a.tar.xz")).toBe(downloads);
  });

  it("reads another remote device with device=", async () => {
    const env = makeEnv(g);
    expect(await run(["test", "a", "device=source"], env)).toBe(local("pool/a-src.tar.xz"));
    expect(env.version_detail).toEqual([]); // the remote has no sidecar for it
    // Our sidecar holds only the owner record then.
    expectPublished(g, local("pool/a-src.tar.xz"));
    expect(Object.keys(readJson(local("pool/a-src.json")))).toEqual(["origin"]);
  });

  it.each<[string, string[], () => void, (string | RegExp)[]]>([
    [
      "channels.json fails (500)",
      ["test", "a"],
      () => remote.server.routes.set("/channels.json", routes.status(500)),
      ["/channels.json: HTTP 500"],
    ],
    [
      "channels.json times out",
      ["test", "a"],
      () => remote.server.routes.set("/channels.json", routes.silent()),
      ["/channels.json: timed out"],
    ],
    [
      "channels.json is not JSON",
      ["test", "a"],
      () => remote.server.routes.set("/channels.json", "<html>"),
      ["channels.json is not valid JSON"],
    ],
    ["the channel is missing", ["invalid", "a"], () => {}, ["channel 'invalid' is not in"]],
    ["the channel has no devices", ["nodevices", "a"], () => {}, ["channel 'nodevices' of", "has no devices"]],
    ["the device is missing", ["test", "a"], () => {}, ["device 'mako' is not in channel 'test'"]],
    ["the device= override is missing", ["test", "a", "device=invalid"], () => {}, ["device 'invalid' is not in channel 'test'"]],
    ["the device has no index", ["noindex", "a", "device=test"], () => {}, ["device 'test' of channel 'noindex'", "has no index"]],
    [
      "the index fails (404)",
      ["test", "a", "device=test"],
      () => remote.server.routes.set("/test/test/index.json", routes.status(404)),
      ["/test/test/index.json: HTTP 404"],
    ],
    [
      "the index times out",
      ["test", "a", "device=test"],
      () => remote.server.routes.set("/test/test/index.json", routes.silent()),
      ["timed out"],
    ],
    ["there is no full image", ["test", "a", "device=empty"], () => {}, ["/test/empty/index.json has no full image"]],
    ["no file has the prefix", ["test", "invalid", "device=test"], () => {}, ["no file with prefix 'invalid' in version 2 of"]],
    [
      "the file fails (500)",
      ["test", "a", "device=test"],
      () => remote.server.routes.set("/pool/a-a.tar.xz", routes.status(500)),
      ["/pool/a-a.tar.xz: HTTP 500"],
    ],
    [
      "the file times out",
      ["test", "a", "device=test"],
      () => remote.server.routes.set("/pool/a-a.tar.xz", routes.stalled(remote.aa)),
      ["timed out while reading the body"],
    ],
    ["the file path leaves the tree", ["test", "escape", "device=escape"], () => {}, ["refusing remote file path", "'..' segment"]],
    [
      "the keyring to swap in does not exist",
      ["test", "device", "device=test,keyring=fail"],
      () => {},
      ["keyring=fail: cannot read", "fail.tar.xz (ENOENT)"],
    ],
    [
      "the tarball has no recovery image",
      ["test", "device", "device=nodev,keyring=archive-master"],
      () => {},
      ["keyring=archive-master:", "/pool/device-n.tar.xz has no partitions/recovery.img"],
    ],
  ])("fails when %s, leaving nothing behind", async (_what, args, setup, parts) => {
    setup();
    const env = makeEnv(g, { device_name: "mako" });
    await expectGenError(run(args, env), "Cannot generate remote-system-image for test/mako: ", ...parts);
    expect(env.version_detail).toEqual([]);
    expect(imageListing(g)).toEqual([]);
    expect(existsSync(join(g.config.base_path, "escape-x.tar.xz"))).toBe(false);
  });

  it.each([
    ["fails", routes.status(500)],
    ["times out", routes.silent()],
    ["is not JSON", "not json"],
  ])("still imports the file when its sidecar %s", async (_what, route) => {
    remote.server.routes.set("/pool/a-a.json", route);
    const env = makeEnv(g);
    expect(await run(["test", "a"], env)).toBe(local("pool/a-a.tar.xz"));
    expect(env.version_detail).toEqual([]);
    expect(imageListing(g)).toEqual(["a-a.json", "a-a.json.asc", "a-a.tar.xz", "a-a.tar.xz.asc"]);
    expectSigned(g, local("pool/a-a.tar.xz"));
  });

  it("keyring=: swaps this server's keyring into the recovery image of the device tarball", async () => {
    const path = await run(["test", "device", "keyring=archive-master"]);
    expect(path).toBe(local("pool/device-d.tar.xz"));
    expectPublished(g, path!);
    expect(readJson(local("pool/device-d.json")).origin).toMatchObject({ keyring: "archive-master", sha256: sha256(remote.device) });
    expect(readFileSync(path!).equals(remote.device)).toBe(false);
    // Everything but the recovery image is as it was.
    expect(tarMember(path!, "partitions/boot.img").equals(bytes(5000, 4))).toBe(true);
    expect(tarMember(path!, "system/etc/device").toString()).toBe("d\n");

    const { parts } = unpackBootimg(tarMember(path!, RECOVERY));
    const before = unpackBootimg(remote.recovery).parts;
    expect(parts.kernel.equals(before.kernel)).toBe(true);
    const dir = tmp("si-ramdisk-x-");
    execFileSync("cpio", ["--quiet", "-idm"], { cwd: dir, input: execFileSync("gzip", ["-dc"], { input: parts.ramdisk }) });
    const ours = join(g.config.gpg_keyring_path, "archive-master.tar.xz");
    expect(readFileSync(join(dir, "etc/system-image/archive-master.tar.xz")).equals(readFileSync(ours))).toBe(true);
    expect(readFileSync(join(dir, "etc/system-image/archive-master.tar.xz.asc")).equals(readFileSync(`${ours}.asc`))).toBe(true);
    expect(readFileSync(join(dir, "sbin/recovery")).equals(bytes(7000, 7))).toBe(true);
  });

  describe("pool owners (issue 13)", () => {
    it("warns on every run without verify=, and not with it", async () => {
      await run(["test", "a"]);
      await run(["test", "a"]);
      const warned = g.logs.filter((l) => l.startsWith("W: unverified upstream: remote-system-image"));
      expect(warned).toHaveLength(2);
      expect(warned[0]).toContain(`${remote.server.url} test/test for test/test has no verify= keyring`);
      g.logs.length = 0;
      await run(["test", "device", `verify=${remote.keyring}`]);
      expect(g.logs.filter((l) => l.includes("unverified"))).toEqual([]);
      expect(readJson(local("pool/device-d.json")).origin).toMatchObject({ verified: true });
    });

    it("does not reuse the file of another keyring= swap at the same path", async () => {
      await run(["test", "device", "keyring=archive-master"]);
      const env = makeEnv(g);
      await expectGenError(
        run(["test", "device"], env),
        `pool file ${local("pool/device-d.tar.xz")} belongs to another source: it was made by remote-system-image from ${remote.server.url}/pool/device-d.tar.xz`,
      );
      expect(env.version_detail).toEqual([]);
    });

    it("reuses a file another generator made (or with no owner record) only when its bytes are the upstream's", async () => {
      mkdirSync(join(g.config.publish_path, "pool"), { recursive: true });
      writeFileSync(local("pool/a-a.tar.xz"), remote.aa);
      writeFileSync(local("pool/a-a.json"), dumpPyJson({ generator: "http", url: "http://x/", version: "1", version_detail: "a=1" }));
      const env = makeEnv(g);
      expect(await run(["test", "a"], env)).toBe(local("pool/a-a.tar.xz"));
      expect(env.version_detail).toEqual(["a=1"]);
      writeFileSync(local("pool/a-a.tar.xz"), xzTarball("other\n"));
      await expectGenError(
        run(["test", "a"]),
        "it was made by http from http://x/ (a sidecar without an owner record) and its SHA-256",
        `is not the ${sha256(remote.aa)} of ${remote.server.url}/test/test/index.json`,
      );
    });

    it("refuses a download that does not match the index's checksum, with or without verify=", async () => {
      await expectGenError(
        run(["test", "a", "device=badsum"]),
        "/pool/a-a.tar.xz has SHA-256 ",
        `/test/badsum/index.json says ${"0".repeat(64)}`,
      );
      expect(imageListing(g)).toEqual([]);
    });
  });

  describe("verify=", () => {
    it("imports when channels.json, the index and the file are signed by the keyring (with keyring= too)", async () => {
      const env = makeEnv(g);
      expect(await run(["test", "a", `verify=${remote.keyring}`], env)).toBe(local("pool/a-a.tar.xz"));
      expect(env.version_detail).toEqual(["a=1"]);
      expect(remote.server.hitsOf("/channels.json.asc")).toBeGreaterThan(0);
      expect(await run(["test", "device", `verify=${remote.keyring},keyring=archive-master`])).toBe(local("pool/device-d.tar.xz"));
      expectSigned(g, local("pool/a-a.tar.xz"), local("pool/device-d.tar.xz"));
    });

    it("imports nothing when another key signed the remote", async () => {
      const other = join(g.config.base_path, "other.tar.xz");
      await writeKeyringTarball(other, { type: "image-signing" }, await loadPublicKeyFile(g.config.gpg_key_path, "device-signing"), {
        xzLevel: 1,
      });
      await expectGenError(
        run(["test", "a", `verify=${other}`]),
        "Bad signature on",
        "/channels.json: signed by",
        "not in the trusted keyring",
      );
      expect(imageListing(g)).toEqual([]);
    });

    it("refuses an expired keyring", async () => {
      const expired = join(g.config.base_path, "expired.tar.xz");
      await writeKeyringTarball(
        expired,
        { type: "image-signing", expiry: 1_000_000 },
        await loadPublicKeyFile(g.config.gpg_key_path, "image-signing"),
        { xzLevel: 1 },
      );
      await expectGenError(run(["test", "a", "verify=expired.tar.xz"]), `verify keyring ${expired} expired on 1970-01-12`);
    });

    it.each<[string, () => void, string[], string[]]>([
      [
        "the file was changed",
        () =>
          remote.server.routes.set(
            "/pool/a-a.tar.xz",
            Buffer.concat([remote.aa.subarray(0, 40), Buffer.from("x"), remote.aa.subarray(41)]),
          ),
        ["test", "a"],
        ["Bad signature on", "/pool/a-a.tar.xz: the data does not match"],
      ],
      [
        "channels.json was changed",
        () => remote.server.routes.set("/channels.json", readFileSync(join(remote.r.config.publish_path, "channels.json"), "utf8") + " "),
        ["test", "a"],
        ["Bad signature on", "/channels.json"],
      ],
      [
        "the index has no signature",
        () => remote.server.routes.set("/test/test/index.json.asc", routes.status(404)),
        ["test", "a"],
        ["/test/test/index.json.asc: HTTP 404"],
      ],
      [
        "the file does not match the index's checksum",
        () => {},
        ["test", "a", "device=badsum"],
        ["/pool/a-a.tar.xz has SHA-256 ", `/test/badsum/index.json says ${"0".repeat(64)}`],
      ],
    ])("imports nothing when %s", async (_what, setup, args, parts) => {
      setup();
      const [channel, prefix, opts] = args;
      const options = [opts, `verify=${remote.keyring}`].filter(Boolean).join(",");
      const env = makeEnv(g);
      await expectGenError(run([channel, prefix, options], env), ...parts);
      expect(env.version_detail).toEqual([]);
      expect(imageListing(g)).toEqual([]);
    });
  });
});
