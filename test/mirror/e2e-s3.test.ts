/**
 * The README "Scaling out" recipe for an S3-compatible bucket behind a CDN (issue 16), end to
 * end: `type = rclone` with an `type = s3, provider = Other` remote whose keys come from the
 * environment (RCLONE_CONFIG_<REMOTE>_ACCESS_KEY_ID / _SECRET_ACCESS_KEY), pushed to s3rver (a
 * fake S3 server), read by the device model through a caching "CDN" (a small proxy here that
 * caches every object until it gets an HTTP PURGE for it), and `purge_command = curl -fsS -X
 * PURGE`. Without the purge the CDN would keep serving the old channels.json.
 *
 * s3rver is a devDependency (only tests use it); SI_TEST_S3RVER names another binary.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DeviceClientOptions } from "../helpers/device-client.js";
import { deviceOverHttp } from "../helpers/tree-files.js";
import { REPO, runSiAsync } from "../helpers/instance.js";
import { addMirrors, freePort } from "../helpers/mirror-servers.js";
import { buildImportedTree, type ImportedTree } from "../e2e/tree-fixture.js";

const S3RVER = process.env.SI_TEST_S3RVER ?? join(REPO, "node_modules/.bin/s3rver");
const BUCKET = "system-image";

interface Cdn {
  url: string;
  port: number;
  /** Paths PURGE was asked for, in order. */
  purged: string[];
  server: Server;
}

/** A CDN edge: caches every object of the origin (status, type, body) until PURGE. */
async function startCdn(origin: string): Promise<Cdn> {
  const cache = new Map<string, { status: number; type: string; body: Buffer }>();
  const purged: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://cdn").pathname;
    if (req.method === "PURGE") {
      purged.push(path);
      cache.delete(path);
      return void res.writeHead(200).end("purged\n");
    }
    if (req.method !== "GET" && req.method !== "HEAD") return void res.writeHead(405).end();
    const reply = (o: { status: number; type: string; body: Buffer }) => {
      res.writeHead(o.status, { "content-type": o.type, "content-length": o.body.length });
      res.end(req.method === "HEAD" ? undefined : o.body);
    };
    const hit = cache.get(path);
    if (hit) return reply(hit);
    fetch(`${origin}${path}`)
      .then(async (r) => {
        const o = {
          status: r.status,
          type: r.headers.get("content-type") ?? "application/octet-stream",
          body: Buffer.from(await r.arrayBuffer()),
        };
        cache.set(path, o);
        reply(o);
      })
      .catch(() => res.writeHead(502).end());
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, port, purged, server };
}

describe("an S3-compatible bucket behind a CDN (rclone s3 remote, purge_command)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "si-mirror-s3-"));
  let t: ImportedTree;
  let s3: ChildProcess;
  let cdn: Cdn;
  let rcloneConfig: string;
  // The recipe keeps the keys out of the config file: rclone reads them from the environment.
  // AWS_CA_BUNDLE (set on some build hosts) makes rclone 1.60's s3 backend fail with
  // "LoadCustomCABundleError ... unsupported transport": the recipe's push runs without it.
  const env = { RCLONE_CONFIG_BUCKET_ACCESS_KEY_ID: "S3RVER", RCLONE_CONFIG_BUCKET_SECRET_ACCESS_KEY: "S3RVER", AWS_CA_BUNDLE: undefined };
  const push = () => runSiAsync(["--config", t.inst.config, "mirror", "push", "cdn"], { env });

  const device = (o: Partial<DeviceClientOptions>) => deviceOverHttp(cdn.port, t.inst.keyrings, scratch, o);

  beforeAll(async () => {
    t = await buildImportedTree();
    const port = await freePort();
    mkdirSync(join(scratch, "s3"));
    s3 = spawn(S3RVER, ["-d", join(scratch, "s3"), "-a", "127.0.0.1", "-p", String(port), "-s", "--configure-bucket", BUCKET], {
      stdio: "ignore",
    });
    const endpoint = `http://127.0.0.1:${port}`;
    for (
      let i = 0;
      i < 200 &&
      !(await fetch(`${endpoint}/${BUCKET}`).then(
        (r) => r.status < 500,
        () => false,
      ));
      i++
    )
      await new Promise((r) => setTimeout(r, 50));
    cdn = await startCdn(`${endpoint}/${BUCKET}`);
    rcloneConfig = join(scratch, "rclone.conf");
    writeFileSync(rcloneConfig, `[bucket]\ntype = s3\nprovider = Other\nendpoint = ${endpoint}\nenv_auth = false\n`);
    addMirrors(t.inst.config, {
      cdn: { type: "rclone", remote: `bucket:${BUCKET}`, rclone_config: rcloneConfig, url: cdn.url, purge_command: "curl -fsS -X PURGE" },
    });
  });
  afterAll(async () => {
    s3?.kill();
    await new Promise((ok) => (cdn ? cdn.server.close(ok) : ok(undefined)));
    rmSync(scratch, { recursive: true, force: true });
  });

  it("pushes the tree into the bucket, and a build 0 device upgrades through the CDN", async () => {
    const r = await push();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const run = await device({ buildNumber: 0 });
    expect([run.outcome, run.buildNumber]).toEqual(["applied", 2]);
    for (const x of run.trace) expect([x.url.startsWith(cdn.url), x.status]).toEqual([true, 200]);
  });

  it("purges the changed documents after the next push, so the CDN hands out the new channels.json", async () => {
    const tag = await t.inst.siAsync("tag-image", "devel", "mako", "2", "cdn");
    expect(tag.status, tag.stdout + tag.stderr).toBe(0);
    const before = cdn.purged.length;
    const r = await push();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const purged = cdn.purged.slice(before);
    expect(purged).toEqual(expect.arrayContaining(["/channels.json", "/channels.json.asc", "/devel/mako/index.json"]));
    // Content-named files are never purged: they are new names.
    expect(purged.filter((p) => /\/pool\/|index-[0-9a-f]{16}\.json/.test(p))).toEqual([]);
    const run = await device({ buildNumber: 0 });
    expect([run.outcome, run.buildNumber]).toEqual(["applied", 3]);
  });
});
