/**
 * An rsync mirror end to end (issue 16): a primary built by the real import pipeline (full 1,
 * full 2, delta 2←1: test/e2e/tree-fixture.ts), `[mirror_m] type = rsync` pushing over ssh to
 * a real sshd started here (key login, pinned host key), the mirror's directory served by a
 * real nginx, and the real-client device model (test/helpers/device-client.ts) upgrading
 * devices from that nginx only. Run: `npx vitest run test/mirror/e2e-rsync.test.ts` (needs
 * sshd, ssh, rsync, nginx, gpg, tar, xz).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareTrees } from "../helpers/apply-delta.js";
import type { DeviceClientOptions } from "../helpers/device-client.js";
import { addMirrors, startNginxOver, startSshd, type RunningNginx, type RunningSshd } from "../helpers/mirror-servers.js";
import { buildImportedTree, type ImportedTree } from "../e2e/tree-fixture.js";
import { deviceOverHttp, referenceSystem, treeFiles } from "../helpers/tree-files.js";

const scratch = mkdtempSync(join(tmpdir(), "si-mirror-rsync-"));

describe("an rsync mirror over a real sshd, read by devices through the mirror's nginx", () => {
  let t: ImportedTree;
  let sshd: RunningSshd;
  let nginx: RunningNginx;
  let push: { status: number; stdout: string; stderr: string };
  const mirror = join(scratch, "mirror-www");

  const device = (o: Partial<DeviceClientOptions>) => deviceOverHttp(nginx.port, t.inst.keyrings, scratch, o);

  beforeAll(async () => {
    t = await buildImportedTree({ realisticSizes: true });
    sshd = await startSshd(join(scratch, "sshd"));
    mkdirSync(mirror);
    nginx = await startNginxOver(mirror, { workDir: join(scratch, "nginx") });
    addMirrors(t.inst.config, {
      m: {
        type: "rsync",
        target: `${sshd.user}@127.0.0.1:${mirror}`,
        ssh_key: sshd.clientKey,
        ssh_port: sshd.port,
        ssh_known_hosts: sshd.knownHostsFile,
        url: nginx.url,
      },
    });
    push = await t.inst.siAsync("mirror", "push");
  });
  afterAll(async () => {
    await nginx?.stop();
    await sshd?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("si mirror push copies the primary's published tree to the mirror, byte for byte", () => {
    expect(push.status, push.stdout + push.stderr).toBe(0);
    const primary = treeFiles(t.inst.publish);
    const copy = treeFiles(mirror);
    expect([...copy.keys()].sort()).toEqual([...primary.keys()].sort());
    for (const [rel, data] of primary) expect(copy.get(rel)!.equals(data), rel).toBe(true);
  });

  it("si verify-tree --server finds the mirror complete and current, as a device would (deep: every file's sha256)", async () => {
    const r = await t.inst.siAsync("verify-tree", "--server", nginx.url, "--deep");
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it("upgrades a build 0 device to full 2 from the mirror's nginx alone", async () => {
    const [, full2] = t.index().images;
    const run = await device({ buildNumber: 0 });
    expect([run.outcome, run.path]).toEqual(["applied", "2"]);
    expect(run.ubuntuCommand).toContain("format system");
    expect(compareTrees(run.systemDir, referenceSystem(scratch, t.inst.publish, full2))).toEqual([]);
    expect(run.buildNumber).toBe(2);
    expect(run.trace.length).toBeGreaterThan(10);
    for (const r of run.trace) expect([r.url.startsWith(nginx.url), r.status]).toEqual([true, 200]);
    // nginx logged what the device fetched: the pair it verified and the files it applied.
    const log = readFileSync(nginx.accessLog, "utf8");
    expect(log).toMatch(/^GET \/channels\.json\.asc 200 /m);
    for (const f of full2.files) expect(log).toContain(`GET ${f.path} 200 ${readFileSync(join(mirror, f.path)).length}`);
  });

  it("upgrades a build 1 device with the delta 2←1 from the mirror, ending like a fresh install of 2", async () => {
    const [full1, full2, delta] = t.index().images;
    const run = await device({ buildNumber: 1, system: referenceSystem(scratch, t.inst.publish, full1) });
    expect([run.outcome, run.path]).toEqual(["applied", "2"]);
    expect(run.ubuntuCommand).not.toContain("format system");
    for (const f of delta.files) expect(run.ubuntuCommand).toContain(f.path.split("/").pop());
    expect(compareTrees(run.systemDir, referenceSystem(scratch, t.inst.publish, full2))).toEqual([]);
    expect(run.buildNumber).toBe(2);
  });

  it("carries a later change on the next push: tag-image's image 3 reaches a build 2 device through the mirror", async () => {
    // tag-image publishes the tagged image as a new version (server-reference: a copy with the tag in version_detail).
    const tag = await t.inst.siAsync("tag-image", "devel", "mako", "2", "mirrored");
    expect(tag.status, tag.stdout + tag.stderr).toBe(0);
    const again = await t.inst.siAsync("mirror", "push", "m");
    expect(again.status, again.stdout + again.stderr).toBe(0);
    for (const f of ["channels.json", "channels.json.asc"])
      expect(readFileSync(join(mirror, f)).equals(readFileSync(join(t.inst.publish, f))), f).toBe(true);
    const [, full2] = t.index().images;
    const run = await device({ buildNumber: 2, system: referenceSystem(scratch, t.inst.publish, full2) });
    expect([run.outcome, run.path, run.buildNumber]).toEqual(["applied", "3", 3]);
    // It read the index copy the new channels.json names, from the mirror.
    const named = (
      JSON.parse(readFileSync(join(t.inst.publish, "channels.json"), "utf8")) as Record<
        string,
        { devices: Record<string, { index: string }> }
      >
    ).devel.devices.mako.index;
    expect(run.trace.map((r) => r.url)).toContain(new URL(named.replace(/^\//, ""), nginx.url).href);
    expect(readFileSync(join(mirror, named), "utf8")).toContain("tag=mirrored");
    for (const r of run.trace) expect([r.url.startsWith(nginx.url), r.status]).toEqual([true, 200]);
  });
});
