/**
 * The channels.json pair on an rsync mirror (src/mirror/pair-dir.ts): pushed under a
 * content-named directory and switched by one symlink rename, and served through that symlink
 * by the nginx site's exact locations (src/deploy/nginx-site.ts `pairLocations`). Real sshd,
 * rsync and nginx on 127.0.0.1.
 *
 * The property devices need: even while the plain `channels.json` and `channels.json.asc` on
 * the mirror disagree (the gap between their two renames, which a busy disk stretches to tens
 * of milliseconds), a request pair gets a document and the signature made with it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import type { RsyncMirrorConfig } from "../../src/config/types.js";
import { pairLocations } from "../../src/deploy/nginx-site.js";
import { planPush, type ManifestEntry } from "../../src/mirror/plan.js";
import { rsyncTransport } from "../../src/mirror/rsync.js";
import { takeSnapshot } from "../../src/mirror/snapshot.js";
import { startNginxOver, startSshd, type RunningNginx, type RunningSshd } from "../helpers/mirror-servers.js";
import { tmp } from "../importer/fixtures.js";

let sshd: RunningSshd;
let nginx: RunningNginx;
const target = tmp("si-pair-target-");

beforeAll(async () => {
  sshd = await startSshd(tmp("si-pair-sshd-"));
  // The shipped site's pair locations and its refusal of hidden paths.
  nginx = await startNginxOver(target, { serverExtra: [...pairLocations(), "    location ~ /\\. { return 404; }"].join("\n") });
}, 60_000);
afterAll(async () => {
  await nginx?.stop();
  await sshd?.stop();
});

const get = async (path: string) => (await fetch(new URL(path, nginx.url))).text();

describe("the channels.json pair on an rsync mirror", () => {
  it("is switched by one symlink, and nginx serves a matching pair even while the plain files are torn", async () => {
    const root = tmp("si-pair-src-");
    mkdirSync(join(root, "pool"));
    writeFileSync(join(root, "pool/a.tar.xz"), "payload\n");
    const m: RsyncMirrorConfig = {
      name: "m",
      type: "rsync",
      target: `${sshd.user}@127.0.0.1:${target}`,
      ssh_key: sshd.clientKey,
      ssh_port: sshd.port,
      ssh_known_hosts: sshd.knownHostsFile,
    };
    const transport = rsyncTransport(m, { connectTimeout: 5, liveRoot: root });
    let manifest: ManifestEntry[] = [];
    const push = async (doc: string, at: number) => {
      writeFileSync(join(root, "channels.json"), doc);
      writeFileSync(join(root, "channels.json.asc"), `signature of ${doc}`);
      utimesSync(join(root, "channels.json"), at, at);
      utimesSync(join(root, "channels.json.asc"), at, at);
      const snap = await takeSnapshot(root, tmp("si-pair-snap-"), { pairDir: true });
      try {
        const plan = planPush(snap.files, manifest, Date.now());
        for (const phase of plan.phases)
          if (phase.files.length)
            await transport.pushPhase(phase.files, snap.rootOf(phase.name), undefined, { links: phase.name === "channels-switch" });
        manifest = snap.files.map((f) => ({ ...f, removableAfter: null }));
        return plan;
      } finally {
        await snap.close();
      }
    };

    const first = await push('{"v": 1}\n', 1_700_000_000);
    expect(first.phases.map((p) => [p.name, p.files.length])).toEqual([
      ["files", 1],
      ["index-copies", 0],
      ["indexes", 0],
      ["keyrings", 0],
      ["channels-pair", 2],
      ["channels-switch", 1],
      ["channels", 2],
    ]);
    const current = join(target, ".si/channels/current");
    expect(lstatSync(current).isSymbolicLink()).toBe(true);
    const firstDir = readlinkSync(current);
    expect(await get("/channels.json")).toBe('{"v": 1}\n');
    expect(await get("/channels.json.asc")).toBe('signature of {"v": 1}\n');

    await push('{"v": 2}\n', 1_700_000_100);
    const secondDir = readlinkSync(current);
    expect(secondDir).not.toBe(firstDir);
    expect(readFileSync(join(target, ".si/channels", firstDir, "channels.json"), "utf8")).toBe('{"v": 1}\n'); // removed later, after the grace

    // The gap between the two renames of the plain pair, frozen: document new, signature old.
    writeFileSync(join(target, "channels.json"), '{"v": 3}\n');
    expect(await get("/channels.json")).toBe('{"v": 2}\n');
    expect(await get("/channels.json.asc")).toBe('signature of {"v": 2}\n');
    // The hidden directory itself is not served.
    expect((await fetch(new URL(".si/channels/current/channels.json", nginx.url))).status).toBe(404);
  }, 120_000);
});
