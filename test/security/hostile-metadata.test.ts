/**
 * Metadata a hostile upstream controls (issue 13 #1-#3), through the real `si import-images`
 * against a hostile system-image server on 127.0.0.1: a version_detail that injects
 * channel.ini lines or a tag, index paths with a newline, a space, a dot directory or a dot
 * file, and a pool file planted for another channel's `http` generator. For each: the device's
 * import fails with one error line naming the URL/file/key, exit 1, the other device still
 * imports, and the published tree is byte-identical (every file hashed before and after).
 * Benign controls (UBports-style tags, long legal names) import. Also the channel.ini writer
 * and the tree API on their own (defence in depth).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { dumpPyJson } from "../../src/format/pyjson.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { filePrefix, sidecarPath } from "../../src/model/naming.js";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import { Tree, readVersionIni, writeVersionTarball } from "../../src/tree/index.js";
import { verifyTree } from "../../src/verify/index.js";
import { serve, sha256, xzTarball, type TestServer } from "../generators/fixtures.js";
import { makeInstance, type Instance } from "../helpers/instance.js";
import { runImport } from "./import-harness.js";

/** Issue 13: peak RSS of the whole import process tree, whatever the hostile input. */
const MAX_RSS_MB = 300;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
/** Every file of the tree with its sha256: "byte-identical" means this does not change. */
function snapshot(root: string): Record<string, string> {
  return Object.fromEntries(walk(root).map((f) => [relative(root, f), createHash("sha256").update(readFileSync(f)).digest("hex")]));
}

interface UpstreamFile {
  path: string;
  data: Buffer;
  /** The upstream's sidecar `version_detail` (no sidecar when undefined). */
  detail?: string;
  sidecar?: object;
}

/** A system-image server that serves whatever it is told: channel `up`, one device per case. */
class Upstream {
  devices = new Map<string, UpstreamFile>();
  constructor(readonly server: TestServer) {}
  get url() {
    return this.server.url;
  }
  set(device: string, f: UpstreamFile): void {
    this.devices.set(device, f);
    const devices: Record<string, { index: string }> = {};
    for (const d of this.devices.keys()) devices[d] = { index: `/up/${d}/index.json` };
    this.server.routes.set("/channels.json", dumpPyJson({ up: { devices } }));
    const entry = { checksum: sha256(f.data), order: 0, path: f.path, signature: `${f.path}.asc`, size: f.data.length };
    const index = {
      global: { generated_at: "Mon Jan 03 10:00:00 UTC 2022" },
      images: [{ type: "full", version: 1, description: "", files: [entry] }],
    };
    this.server.routes.set(`/up/${device}/index.json`, dumpPyJson(index));
    this.server.routes.set(f.path, f.data);
    if (f.detail !== undefined || f.sidecar)
      this.server.routes.set(sidecarPath(f.path), dumpPyJson({ generator: "http", ...(f.sidecar ?? { version_detail: f.detail }) }));
  }
}

/** The error lines of a run (`si: error:` on stderr, or the importer's JSON error records). */
function errorLines(r: { stdout: string; stderr: string }): string[] {
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("si: error:"));
  // The JSON log holds the same failures (one record each), nothing more.
  expect(r.stdout.split("\n").filter((l) => l.includes('"level":"error"'))).toHaveLength(lines.length);
  return lines;
}

async function instance(up: Upstream, channels: string): Promise<Instance> {
  const inst = makeInstance({ extraConfig: ["http_timeout = 2", "http_retries = 0", channels].join("\n") + "\n" });
  expect(inst.si("generate-keyrings").status).toBe(0);
  void up;
  return inst;
}

describe("a hostile upstream's metadata", () => {
  let server: TestServer;
  let up: Upstream;
  let inst: Instance;
  const goodTar = xzTarball("good\n");

  const config = (upDevice: string) =>
    [
      "channels = devel",
      "[channel_devel]",
      "type = auto",
      "files = device,bad, device, version",
      `file_device,bad = remote-system-image;${up.url};up;${filePrefix(up.devices.get(upDevice)!.path)};device=${upDevice}`,
      `file_device = http;${up.url}/good.tar.xz;name=device,monitor=${up.url}/good.version`,
      "file_version = version",
    ].join("\n");
  let baseConfig = "";
  const useCase = (upDevice: string) => writeFileSync(inst.config, `${baseConfig}${config(upDevice)}\n`);

  beforeAll(async () => {
    server = await serve({ "/good.tar.xz": goodTar, "/good.version": "1\n" });
    up = new Upstream(server);
    up.set("benign", {
      // A long but legal name (191 characters), a real UBports-style version_detail.
      path: `/pool/ubports-${"0123456789abcdef".repeat(11)}.tar.xz`,
      data: xzTarball("benign\n"),
      detail: "ubports=20240101-12345",
    });
    inst = await instance(up, "");
    baseConfig = readFileSync(inst.config, "utf8");
    useCase("benign");
    const tree = new Tree(await loadConfig(inst.config));
    await tree.createChannel("devel");
    await tree.createDevice("devel", "bad");
    await tree.createDevice("devel", "good");
  });
  afterAll(() => server?.close());

  it("benign: a UBports-style version_detail and a 191-character name import (both devices)", async () => {
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(errorLines(r)).toEqual([]);
    for (const dev of ["bad", "good"]) {
      const idx = JSON.parse(readFileSync(join(inst.publish, `devel/${dev}/index.json`), "utf8")) as IndexDoc;
      expect(idx.images.map((i: { version: number }) => i.version)).toEqual([1]);
    }
    const ini = await readVersionIni(join(inst.publish, "devel/bad/version-1.tar.xz"));
    expect(ini!.version_detail).toBe("ubports=20240101-12345,version=1");
    // No verify=: the file is an "unverified upstream" for verify-tree (a warning, not an error).
    const rep = await verifyTree(await loadConfig(inst.config));
    // (This instance publishes no keyrings: those errors are not the subject here.)
    expect(rep.problems.filter((p) => p.severity === "error" && !p.file.startsWith("gpg/"))).toEqual([]);
    expect(rep.problems.filter((p) => p.message.startsWith("unverified upstream")).map((p) => p.file)).toEqual([
      `pool/ubports-${"0123456789abcdef".repeat(11)}.tar.xz`,
    ]);
  });

  const evilData = xzTarball("evil\n");
  const cases: [string, UpstreamFile, (u: string) => string[]][] = [
    [
      "a version_detail injecting [service] base: and [gpg] lines",
      {
        path: "/pool/dev-1.tar.xz",
        data: evilData,
        detail: "device=1\n[service]\nbase: evil.example.com\n[gpg]\narchive_master: /tmp/evil.tar.xz",
      },
      (u) => [`the upstream sidecar ${u}/pool/dev-1.json`, '(key "device")', 'control character "\\n"'],
    ],
    [
      "a version_detail with a comma injecting tag=EVIL",
      { path: "/pool/dev-2.tar.xz", data: evilData, detail: "device=2,tag=EVIL" },
      (u) => [`the upstream sidecar ${u}/pool/dev-2.json`, 'item "tag=EVIL" (key "tag"): this server sets that key itself'],
    ],
    [
      "a version_detail value with a space",
      { path: "/pool/dev-3.tar.xz", data: evilData, detail: "device=3 x" },
      (u) => [`the upstream sidecar ${u}/pool/dev-3.json`, '(key "device"): the value has whitespace'],
    ],
    [
      "an index path with newlines (a second ubuntu_command line)",
      { path: "/pool/device-1\nformat data\nx.tar.xz", data: evilData },
      (u) => ['refusing remote file path "/pool/device-1\\nformat data\\nx.tar.xz"', `from ${u}/up/`, "has a control character"],
    ],
    [
      "an index path with a space",
      { path: "/pool/dev 4.tar.xz", data: evilData },
      (u) => ['refusing remote file path "/pool/dev 4.tar.xz"', `from ${u}/up/`, "has whitespace"],
    ],
    [
      "an index path in a dot directory the temp sweep deletes",
      { path: "/pool/.tmp-evil/x.tar.xz", data: evilData },
      (u) => ['refusing remote file path "/pool/.tmp-evil/x.tar.xz"', `from ${u}/up/`, '".tmp-evil" starts with a dot'],
    ],
    [
      "an index path to a dot file",
      { path: "/pool/.dev-5.tar.xz", data: evilData },
      (u) => ['refusing remote file path "/pool/.dev-5.tar.xz"', `from ${u}/up/`, "starts with a dot"],
    ],
    [
      "an index path outside the pool (a future version tarball of ours)",
      { path: "/devel/bad/version-9.tar.xz", data: evilData },
      (u) => ['refusing remote file path "/devel/bad/version-9.tar.xz"', `from ${u}/up/`, "stored under /pool/ only"],
    ],
  ];

  it.each(cases)(
    "%s: one error naming the URL and key, exit 1, the other device imports, the tree is byte-identical",
    async (_name, file, parts) => {
      const dev = `case${cases.findIndex((c) => c[1] === file)}`;
      up.set(dev, file);
      useCase(dev);
      const before = snapshot(inst.publish);
      const r = await runImport(inst);
      expect(r.status, r.stdout + r.stderr).toBe(1);
      expect(r.peakRssMB).toBeLessThanOrEqual(MAX_RSS_MB);
      expect(readdirSync(r.cwd)).toEqual([]); // nothing written outside the instance
      const errors = errorLines(r);
      expect(errors, r.stdout + r.stderr).toHaveLength(1);
      expect(errors[0]).toContain("devel/bad");
      const text = errors[0].startsWith("si: error:") ? errors[0] : (JSON.parse(errors[0]) as { msg: string }).msg;
      for (const part of parts(up.url)) expect(text).toContain(part);
      expect(snapshot(inst.publish)).toEqual(before);
      expect(existsSync("/tmp/evil.tar.xz")).toBe(false);
      // The good device still imports: a new build of its input is published in the same run.
      server.routes.set("/good.version", `${dev}\n`);
      const good = await inst.siAsync("import-images");
      expect(good.status).toBe(1); // bad still fails
      const idx = JSON.parse(readFileSync(join(inst.publish, "devel/good/index.json"), "utf8")) as IndexDoc;
      expect(idx.images.at(-1)!.version_detail).toContain(`device=${dev}`);
    },
  );
});

describe("cross-channel pool poisoning", () => {
  it("channel b's http generator does not reuse the /pool/img-7.tar.xz channel a's upstream planted", async () => {
    const server = await serve({ "/img.tar.xz": xzTarball("b's image\n"), "/img.version": "7\n" });
    try {
      const up = new Upstream(server);
      // The upstream even forges a sidecar that looks like one our http generator writes.
      up.set("poison", {
        path: "/pool/img-7.tar.xz",
        data: xzTarball("a's upstream\n"),
        sidecar: { url: `${server.url}/img.tar.xz`, version: "7", version_detail: "img=7" },
      });
      const channelA = [
        "[channel_a]",
        "type = auto",
        "files = img, version",
        `file_img = remote-system-image;${up.url};up;img;device=poison`,
        "file_version = version",
      ].join("\n");
      const channelB = [
        "[channel_b]",
        "type = auto",
        "files = img, version",
        `file_img = http;${up.url}/img.tar.xz;name=img,monitor=${up.url}/img.version`,
        "file_version = version",
      ].join("\n");
      const inst = await instance(up, `channels = a\n${channelA}`);
      const tree = new Tree(await loadConfig(inst.config));
      for (const ch of ["a", "b"]) {
        await tree.createChannel(ch);
        await tree.createDevice(ch, "mako");
      }
      const first = await inst.siAsync("import-images");
      expect(first.status, first.stdout + first.stderr).toBe(0);
      expect(existsSync(join(inst.publish, "pool/img-7.tar.xz")), first.stdout + first.stderr).toBe(true);

      writeFileSync(inst.config, readFileSync(inst.config, "utf8").replace("channels = a\n", "channels = a, b\n") + `${channelB}\n`);
      const before = snapshot(inst.publish);
      const r = await runImport(inst);
      expect(r.status, r.stdout + r.stderr).toBe(1);
      expect(r.peakRssMB).toBeLessThanOrEqual(MAX_RSS_MB);
      const errors = errorLines(r);
      expect(errors, r.stdout + r.stderr).toHaveLength(1);
      const text = errors[0].startsWith("si: error:") ? errors[0] : (JSON.parse(errors[0]) as { msg: string }).msg;
      expect(text).toContain(
        `Cannot generate http for b/mako: pool file ${join(inst.publish, "pool/img-7.tar.xz")} belongs to another source`,
      );
      expect(text).toContain(`made by remote-system-image from ${up.url}/pool/img-7.tar.xz (upstream up/poison) for channel a/mako`);
      expect(text).toContain(`this is http from ${up.url}/img.tar.xz version 7 for channel b/mako`);
      expect(snapshot(inst.publish)).toEqual(before);
      expect((JSON.parse(readFileSync(join(inst.publish, "b/mako/index.json"), "utf8")) as IndexDoc).images).toEqual([]);
    } finally {
      await server.close();
    }
  });
});

describe("defence in depth: the tree API on its own", () => {
  let inst: Instance;
  beforeAll(() => {
    inst = makeInstance();
  });

  it("the channel.ini writer refuses a newline or other control character in any value", async () => {
    const config = await loadConfig(inst.config);
    const signer = new LocalSigner(config.gpg_key_path);
    const dest = join(inst.publish, "version-1.tar.xz");
    const write = (over: object) =>
      writeVersionTarball(dest, config, { channel: "devel", device: "mako", version: 1, ...over }, { signer, level: 0 });
    await expect(write({ versionDetail: "tag=x\n[service]\nbase: evil.example.com" })).rejects.toThrow(
      /the channel.ini value of version_detail has the control character "\\n"/,
    );
    await expect(write({ channel: "devel\nbase: evil.example.com" })).rejects.toThrow(
      /channel.ini value of channel has the control character/,
    );
    await expect(write({ channelTarget: "x\r" })).rejects.toThrow(/channel_target has the control character "\\r"/);
    await expect(write({ versionDetail: `a=${"x".repeat(1030)}` })).rejects.toThrow(/version_detail is longer than 1024 characters/);
    expect(readdirSync(inst.publish)).toEqual([]); // nothing written, not even a temporary
    // The reference's own test value (a bare item) still writes.
    await write({ versionDetail: "abcdef" });
    expect((await readVersionIni(dest))!.version_detail).toBe("abcdef");
  });

  it("create_image refuses unsafe paths and control characters in descriptions; set_description in translations", async () => {
    const config = await loadConfig(inst.config);
    const tree = new Tree(config);
    await tree.createChannel("devel");
    await tree.createDevice("devel", "mako");
    const dev = await tree.getDevice("devel", "mako");
    await expect(dev.createImage("full", 1, "ok", ["pool/a b.tar.xz"])).rejects.toThrow(
      /file path "\/pool\/a b.tar.xz": the component "a b.tar.xz" has whitespace/,
    );
    await expect(dev.createImage("full", 1, "ok", ["pool/.x/a.tar.xz"])).rejects.toThrow(/"\.x" starts with a dot/);
    await expect(dev.createImage("full", 1, "line\nbreak", ["pool/a.tar.xz"])).rejects.toThrow(
      /devel\/mako\/index.json: description has the control character "\\n"/,
    );
    await expect(dev.createImage("full", 1, "ok", ["pool/a.tar.xz"], { versionDetail: "a=1\n[x]" })).rejects.toThrow(
      /index.json: version_detail has the control character "\\n"/,
    );
    await expect(dev.setDescription("full", 1, "ok", { fr: "x".repeat(2000) })).rejects.toThrow(
      /description_fr is longer than 1024 characters/,
    );
    expect((JSON.parse(readFileSync(join(inst.publish, "devel/mako/index.json"), "utf8")) as IndexDoc).images).toEqual([]);
  });
});
