/**
 * Issue 6 "done when": the embedded demo (`npm start` = `si demo`) on a fresh directory
 * serves a tree that a modelled system-image client upgrades from build 0 and from build 1,
 * over HTTP and over HTTPS; a second start reuses everything.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { compareTrees } from "../helpers/apply-delta.js";
import { runDeviceClient, type DeviceClientOptions } from "../helpers/device-client.js";
import { startDemo, stopDemo, type RunningDemo } from "../helpers/demo-process.js";

const root = mkdtempSync(join(tmpdir(), "si-demo-"));
const scratch = mkdtempSync(join(tmpdir(), "si-demo-dev-"));
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

const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

describe("si demo (npm start)", () => {
  let http: number;
  let https: number;
  let demo: RunningDemo;
  let device: (o: Partial<DeviceClientOptions>) => ReturnType<typeof runDeviceClient>;

  beforeAll(async () => {
    [http, https] = [await freePort(), await freePort()];
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

  it("prints the URLs and how to point a device at it", () => {
    const out = demo.output();
    expect(out).toContain(`http://127.0.0.1:${http}/channels.json`);
    expect(out).toContain(`https://127.0.0.1:${https}/channels.json`);
    expect(out).toContain("secret/gpg/keyrings/archive-master.tar.xz");
    expect(out).toMatch(/channel: demo\n\s+device: generic/);
  });

  it("serves the admin dashboard with the demo channel and its two builds", async () => {
    const url = /admin dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(demo.output())?.[1];
    expect(url, demo.output()).toBeTruthy();
    const html = await (await fetch(url!)).text();
    expect(html).toContain("demo");
    expect(html).toContain("generic");
    const metrics = await (await fetch(url + "metrics")).text();
    expect(metrics).toMatch(/si_keyring_expiry_timestamp_seconds/);
  });

  /** The system a device must end with: full image 2's files extracted in order. */
  function reference(version: number): string {
    const index = JSON.parse(readFileSync(join(root, "www/demo/generic/index.json"), "utf8")) as IndexDoc;
    const img = index.images.find((i) => i.type === "full" && i.version === version)!;
    const dir = mkdtempSync(join(scratch, `ref${version}-`));
    for (const f of [...img.files].sort((a, b) => a.order - b.order))
      execFileSync("tar", ["--numeric-owner", "-xJf", join(root, "www", f.path), "-C", dir]);
    return join(dir, "system");
  }

  it("upgrades a device on build 0 to build 2 with the full image (metadata over HTTPS, files over HTTP)", async () => {
    const run = await device({});
    expect(run.outcome).toBe("applied");
    expect(run.path).toBe("2");
    expect(run.buildNumber).toBe(2);
    expect(run.channelIni).toContain("build_number: 2");
    expect(run.trace.some(({ url }) => url.startsWith(`https://127.0.0.1:${https}/channels.json`))).toBe(true);
    expect(run.trace.some(({ url }) => url.startsWith(`http://127.0.0.1:${http}/pool/`))).toBe(true);
    expect(compareTrees(run.systemDir, reference(2))).toEqual([]);
  });

  it("upgrades a device on build 1 with the delta, over HTTPS only", async () => {
    const run = await device({ buildNumber: 1, system: reference(1), httpPort: "disabled" });
    expect(run.outcome).toBe("applied");
    expect(run.ubuntuCommand, `path ${run.path}: ${run.ubuntuCommand}`).toMatch(/update custom-[0-9a-f]+\.delta-custom-[0-9a-f]+\.tar\.xz/);
    expect(run.ubuntuCommand).not.toContain("format system");
    expect(run.trace.every(({ url }) => url.startsWith("https://"))).toBe(true);
    expect(run.buildNumber).toBe(2);
    expect(compareTrees(run.systemDir, reference(2))).toEqual([]);
  });

  it("serves the same upgrade over plain HTTP only", async () => {
    const run = await device({ httpsPort: "disabled" });
    expect(run.trace.every(({ url }) => url.startsWith("http://"))).toBe(true);
    expect(run.buildNumber).toBe(2);
  });

  it("stops cleanly on SIGTERM and reuses everything on a second start", async () => {
    const keys = sha(join(root, "secret/gpg/keys/image-signing/private.asc"));
    const index = readFileSync(join(root, "www/demo/generic/index.json"));
    expect(await stopDemo(demo.child)).toBe(0);
    demo = await startDemo(root, http, https);
    expect(demo.output()).not.toContain("first run");
    expect(sha(join(root, "secret/gpg/keys/image-signing/private.asc"))).toBe(keys);
    expect(readFileSync(join(root, "www/demo/generic/index.json"))).toEqual(index);
    expect((await device({})).buildNumber).toBe(2);
  });
});
