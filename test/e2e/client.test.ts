/**
 * End to end: a tree built by the real import pipeline (full 1, full 2, delta 2←1) served by
 * `startServer` on HTTP and HTTPS (self-signed certificate given to the device as its CA), and
 * a model of the system-image 3.3 client plus recovery (test/helpers/device-client.ts) that
 * upgrades devices from it. Run: `npx vitest run test/e2e/client.test.ts` (needs gpg, tar, xz,
 * openssl).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../src/config/types.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import { Tree } from "../../src/tree/index.js";
import { startServer, type RunningServer } from "../../src/server/start.js";
import { ensureSelfSignedCertificate } from "../../src/server/tls.js";
import { compareTrees } from "../helpers/apply-delta.js";
import { ClientError, runDeviceClient, type DeviceClientOptions } from "../helpers/device-client.js";
import { buildImportedTree, type ImportedTree } from "./tree-fixture.js";

/** Device directories, copied trees and reference trees of this file; removed at the end. */
const scratch = mkdtempSync(join(tmpdir(), "si-e2e-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The system/ tree a device should end with: the image's files extracted in `order`. */
function referenceSystem(publish: string, img: IndexDoc["images"][number]): string {
  const dir = mkdtempSync(join(scratch, "ref-"));
  for (const f of [...img.files].sort((a, b) => a.order - b.order)) {
    execFileSync("tar", ["--numeric-owner", "-xJf", join(publish, f.path), "-C", dir]);
  }
  return join(dir, "system");
}

interface Served {
  server: RunningServer;
  ca: Buffer;
  device(o: Partial<DeviceClientOptions>): Promise<Awaited<ReturnType<typeof runDeviceClient>>>;
}

async function serve(t: ImportedTree, publish = t.config.publish_path): Promise<Served> {
  const config: Config = { ...t.config, publish_path: publish };
  await ensureSelfSignedCertificate(config.tls_cert!, config.tls_key!, ["localhost", "127.0.0.1"]);
  const server = await startServer(config, { address: "127.0.0.1", httpPort: 0, httpsPort: 0, accessLog: false, logger: { log() {} } });
  const ca = readFileSync(config.tls_cert!);
  return {
    server,
    ca,
    device: (o) =>
      runDeviceClient({
        host: "127.0.0.1",
        httpPort: server.httpPort!,
        httpsPort: server.httpsPort!,
        ca,
        channel: "devel",
        device: "mako",
        buildNumber: 0,
        archiveMaster: join(t.inst.keyrings, "archive-master.tar.xz"),
        workDir: scratch,
        ...o,
      }),
  };
}

/** A copy of the published tree, changed by `edit`, for one failure case. */
function alteredTree(t: ImportedTree, edit: (root: string) => void | Promise<void>): Promise<string> {
  const root = mkdtempSync(join(scratch, "www-"));
  cpSync(t.inst.publish, root, { recursive: true });
  return Promise.resolve(edit(root)).then(() => root);
}

/** The index devel/mako's devices read: the copy channels.json names (src/tree/versioned-index.ts). */
const namedIndex = (root: string) =>
  (JSON.parse(readFileSync(join(root, "channels.json"), "utf8")) as Record<string, { devices: Record<string, { index: string }> }>).devel
    .devices.mako.index;

const names = (img: IndexDoc["images"][number]) =>
  [...img.files].sort((a, b) => a.order - b.order).map((f) => `update ${f.path.split("/").pop()} ${f.signature.split("/").pop()}`);

describe("a device upgrading from a tree built by import-images (fulls of realistic size)", () => {
  let t: ImportedTree;
  let s: Served;
  let full1: IndexDoc["images"][number];
  let full2: IndexDoc["images"][number];
  let delta: IndexDoc["images"][number];
  let ref2: string;

  beforeAll(async () => {
    t = await buildImportedTree({ realisticSizes: true });
    [full1, full2, delta] = t.index().images as [typeof full1, typeof full2, typeof delta];
    ref2 = referenceSystem(t.inst.publish, full2);
    s = await serve(t);
  });
  afterAll(() => s?.server.close());

  it("takes full 2 from build 0, fetching each group with HEAD then GET, metadata over HTTPS and files over HTTP", async () => {
    const run = await s.device({ buildNumber: 0 });
    expect(run.outcome).toBe("applied");
    expect(run.path).toBe("2");
    expect(run.ubuntuCommand!.split("\n")).toEqual([
      "load_keyring image-master.tar.xz image-master.tar.xz.asc",
      "load_keyring image-signing.tar.xz image-signing.tar.xz.asc",
      "format system",
      "mount system",
      ...names(full2),
      "unmount system",
      "",
    ]);
    expect(compareTrees(run.systemDir, ref2)).toEqual([]);
    expect(run.buildNumber).toBe(2);
    expect(run.channelIni).toMatch(/^build_number: 2$/m);
    expect(run.channelIni).toMatch(/^channel: devel$/m);
    expect(run.channelIni).toMatch(/^device: mako$/m);

    const https = `https://127.0.0.1:${s.server.httpsPort}`;
    const http = `http://127.0.0.1:${s.server.httpPort}`;
    const groups = [
      [`${https}/gpg/image-master.tar.xz`, `${https}/gpg/image-master.tar.xz.asc`],
      [`${https}/gpg/blacklist.tar.xz`, `${https}/gpg/blacklist.tar.xz.asc`],
      [`${https}/gpg/image-signing.tar.xz`, `${https}/gpg/image-signing.tar.xz.asc`],
      [`${https}/channels.json`, `${https}/channels.json.asc`],
      [`${https}${namedIndex(t.inst.publish)}`, `${https}${namedIndex(t.inst.publish)}.asc`],
      [...[...full2.files].sort((a, b) => a.order - b.order).flatMap((f) => [`${http}${f.path}`, `${http}${f.signature}`])],
    ];
    const expected = groups.flatMap((g) => [...g.map((url) => ["HEAD", url, 200]), ...g.map((url) => ["GET", url, 200])]);
    expect(run.trace.map((r) => [r.method, r.url, r.status])).toEqual(expected);
  });

  it("takes delta 2←1 from build 1, and ends with the same system/ as a fresh install of 2", async () => {
    const ref1 = referenceSystem(t.inst.publish, full1);
    const run = await s.device({ buildNumber: 1, system: ref1 });
    expect(run.path).toBe("2");
    expect(run.ubuntuCommand!.split("\n")).toEqual([
      "load_keyring image-master.tar.xz image-master.tar.xz.asc",
      "load_keyring image-signing.tar.xz image-signing.tar.xz.asc",
      "mount system",
      ...names(delta),
      "unmount system",
      "",
    ]);
    expect(run.ubuntuCommand).toContain(".delta-");
    expect(compareTrees(run.systemDir, ref2)).toEqual([]);
    expect(run.buildNumber).toBe(2);
    expect(run.channelIni).toMatch(/^build_number: 2$/m);
  });

  it("is up to date on build 2, and silently up to date for an unknown device or channel", async () => {
    const current = await s.device({ buildNumber: 2 });
    expect([current.outcome, current.path]).toEqual(["up-to-date", ""]);
    for (const o of [{ device: "hammerhead" }, { channel: "stable" }]) {
      const run = await s.device(o);
      expect(run.outcome).toBe("up-to-date");
      // It stops after channels.json: no index is ever asked for.
      expect(run.trace.some((r) => r.url.endsWith("index.json"))).toBe(false);
      expect(run.trace.filter((r) => r.method === "GET").pop()!.url).toMatch(/\/channels\.json\.asc$/);
    }
  });

  it("treats a missing blacklist (404) as no blacklist", async () => {
    const root = await alteredTree(t, (r) => {
      rmSync(join(r, "gpg/blacklist.tar.xz"));
      rmSync(join(r, "gpg/blacklist.tar.xz.asc"));
    });
    const other = await serve(t, root);
    try {
      const run = await other.device({ buildNumber: 1, apply: false });
      expect(run.outcome).toBe("downloaded");
      expect(run.trace.find((r) => r.url.endsWith("/gpg/blacklist.tar.xz"))).toMatchObject({ method: "HEAD", status: 404 });
    } finally {
      await other.server.close();
    }
  });

  it("refuses channels.json changed after signing: fetches image-signing again, then SignatureError", async () => {
    const root = await alteredTree(t, (r) => {
      const f = join(r, "channels.json");
      writeFileSync(f, readFileSync(f, "utf8").replace('"devel"', '"devel" '));
    });
    const other = await serve(t, root);
    try {
      const err = await other.device({}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClientError);
      expect((err as ClientError).kind).toBe("SignatureError");
      expect((err as ClientError).message).toMatch(/channels\.json/);
      // On the first bad signature the client fetches image-signing once more, then gives up.
      const gets = (err as ClientError).trace!.filter((r) => r.method === "GET").map((r) => new URL(r.url).pathname);
      expect(gets.filter((p) => p === "/gpg/image-signing.tar.xz")).toHaveLength(2);
      expect(gets.filter((p) => p === "/channels.json")).toHaveLength(2);
      expect(gets.at(-1)).toBe("/channels.json.asc");
    } finally {
      await other.server.close();
    }
  });

  it("rejects a file whose index checksum is wrong with HASH ERROR", async () => {
    const root = await alteredTree(t, async (r) => {
      const f = join(r, namedIndex(r));
      const doc = JSON.parse(readFileSync(f, "utf8")) as IndexDoc;
      doc.images[1].files[0].checksum = "0".repeat(64);
      writeFileSync(f, JSON.stringify(doc, null, 4) + "\n");
      await new LocalSigner(t.config.gpg_key_path).signFile("image-signing", f);
    });
    const other = await serve(t, root);
    try {
      const err = await other.device({ buildNumber: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClientError);
      expect((err as ClientError).kind).toBe("FileNotFoundError");
      expect((err as ClientError).message).toContain(`HASH ERROR: `);
      expect((err as ClientError).message).toContain(full2.files[0].path.split("/").pop());
    } finally {
      await other.server.close();
    }
  });

  it("uses a device keyring only when channels.json advertises it (index signed by the device key)", async () => {
    const sign = new LocalSigner(t.config.gpg_key_path);
    const root = await alteredTree(t, (r) => sign.signFile("device-signing", join(r, namedIndex(r))));
    const plain = await serve(t, root);
    try {
      const err = await plain.device({ buildNumber: 1, apply: false }).catch((e: unknown) => e);
      expect((err as ClientError).kind).toBe("SignatureError");
      expect((err as ClientError).message).toMatch(/^SignatureError: index\.json/);
    } finally {
      await plain.server.close();
    }
    for (const f of ["device-signing.tar.xz", "device-signing.tar.xz.asc"])
      cpSync(join(t.inst.keyrings, f), join(root, "devel/mako", f.replace("device-signing", "device")));
    await new Tree({ ...t.config, publish_path: root }).setDeviceKeyring("devel", "mako", "devel/mako/device.tar.xz");
    const keyed = await serve(t, root);
    try {
      const ref1 = referenceSystem(t.inst.publish, full1);
      const run = await keyed.device({ buildNumber: 1, system: ref1 });
      expect(run.ubuntuCommand!.split("\n").slice(0, 4)).toEqual([
        "load_keyring image-master.tar.xz image-master.tar.xz.asc",
        "load_keyring image-signing.tar.xz image-signing.tar.xz.asc",
        "load_keyring device-signing.tar.xz device-signing.tar.xz.asc",
        "mount system",
      ]);
      expect(run.trace.filter((r) => r.method === "GET").map((r) => new URL(r.url).pathname)).toContain("/devel/mako/device.tar.xz");
      expect(run.recoveryLog).toContain("Loading keyring: device-signing.tar.xz");
      expect(compareTrees(run.systemDir, ref2)).toEqual([]);
    } finally {
      await keyed.server.close();
    }
  });

  it("si check-latest reports full 2 and the delta from 1, from the served tree", async () => {
    const r = await t.inst.siAsync("check-latest", "mako", "--server", `http://127.0.0.1:${s.server.httpPort}`, "--channel", "devel");
    expect(r.status, r.stderr).toBe(0);
    const detail = (img: IndexDoc["images"][number]) =>
      img
        .description!.split(",")
        .filter((e) => !e.startsWith("version="))
        .join(", ");
    expect(r.stdout).toBe(
      [
        `Current full image: 2 (${detail(full2)})`,
        "Available deltas:",
        ` - From '1 (${detail(full1)})' to '2 (${detail(full2)})'`,
        "",
      ].join("\n"),
    );
    const missing = await t.inst.siAsync(
      "check-latest",
      "hammerhead",
      "--server",
      `http://127.0.0.1:${s.server.httpPort}`,
      "--channel",
      "devel",
    );
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/Cannot fetch http:\/\/127\.0\.0\.1:\d+\/devel\/hammerhead\/index\.json: HTTP 404/);
  });
});

describe("a fresh device on a tree of tiny images (client-protocol §6.2, §8.3)", () => {
  let t: ImportedTree;
  let s: Served;

  beforeAll(async () => {
    t = await buildImportedTree();
    s = await serve(t);
  });
  afterAll(() => s?.server.close());

  it("takes full 1 + delta 2 (a tie under 1 MiB goes to the first candidate) and keeps files v2 deleted", async () => {
    const [, full2, delta] = t.index().images;
    const run = await s.device({ buildNumber: 0 });
    expect(run.path).toBe("1:2");
    expect(run.ubuntuCommand).toContain("format system");
    expect(run.buildNumber).toBe(2);
    // FULL_IMAGE=1 makes the recovery skip the delta's `removed`: deleted files survive.
    const removed = execFileSync("tar", ["-xJOf", join(t.inst.publish, delta.files[0].path), "removed"], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
    const problems = compareTrees(run.systemDir, referenceSystem(t.inst.publish, full2));
    expect(problems).toContain("extra: etc/obsolete.conf");
    for (const p of problems) {
      expect(p).toMatch(/^extra: /);
      expect(removed).toContain(`system/${p.slice("extra: ".length)}`);
    }
  });

  it("takes full 2 rather than the delta from build 1 (fulls are generated first)", async () => {
    const [, full2] = t.index().images;
    const run = await s.device({ buildNumber: 1, apply: false });
    expect(run.path).toBe("2");
    expect(run.ubuntuCommand!.split("\n")).toContain("format system");
    expect(run.ubuntuCommand!.split("\n")).toEqual(expect.arrayContaining(names(full2)));
  });
});
