/**
 * rclone mirrors end to end (issue 16): a primary built by the real import pipeline (full 1,
 * full 2, delta 2←1: test/e2e/tree-fixture.ts) pushed by `si mirror push` to two `type = rclone`
 * mirrors at once — `dav`, a WebDAV remote (`mirror:www` in its own rclone config file) served
 * by a real `rclone serve webdav` started here, the way an object store is reached; and `dir`,
 * a plain local directory as the remote. Each is read back over HTTP by a real nginx over the
 * directory rclone wrote, and the real-client device model (test/helpers/device-client.ts)
 * upgrades devices from that nginx only. Run: `npx vitest run test/mirror/e2e-rclone.test.ts`
 * (needs rclone, nginx, gpg, tar, xz).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareTrees } from "../helpers/apply-delta.js";
import type { DeviceClientOptions } from "../helpers/device-client.js";
import { addMirrors, startNginxOver, startRcloneWebdav, type RunningNginx, type RunningRclone } from "../helpers/mirror-servers.js";
import { buildImportedTree, type ImportedTree } from "../e2e/tree-fixture.js";
import { deviceOverHttp, referenceSystem, treeFiles } from "../helpers/tree-files.js";

const scratch = mkdtempSync(join(tmpdir(), "si-mirror-rclone-"));

describe("rclone mirrors (a WebDAV remote and a local directory), read by devices through nginx", () => {
  let t: ImportedTree;
  let dav: RunningRclone;
  const served: Record<"dav" | "dir", { root: string; nginx?: RunningNginx }> = {
    // rclone writes `mirror:www` as www/ under the directory `rclone serve webdav` serves.
    dav: { root: join(scratch, "webdav-root/www") },
    dir: { root: join(scratch, "local-remote") },
  };
  let push: { status: number; stdout: string; stderr: string };

  const device = (nginx: RunningNginx, o: Partial<DeviceClientOptions>) => deviceOverHttp(nginx.port, t.inst.keyrings, scratch, o);

  beforeAll(async () => {
    t = await buildImportedTree({ realisticSizes: true });
    dav = await startRcloneWebdav(join(scratch, "webdav-root"), { workDir: join(scratch, "rclone"), name: "mirror" });
    for (const [name, s] of Object.entries(served)) {
      mkdirSync(s.root, { recursive: true });
      s.nginx = await startNginxOver(s.root, { workDir: join(scratch, `nginx-${name}`) });
    }
    addMirrors(t.inst.config, {
      dav: { type: "rclone", remote: `${dav.remote}www`, rclone_config: dav.configFile, url: served.dav.nginx!.url },
      dir: { type: "rclone", remote: served.dir.root, url: served.dir.nginx!.url },
    });
    push = await t.inst.siAsync("mirror", "push");
  });
  afterAll(async () => {
    for (const s of Object.values(served)) await s.nginx?.stop();
    await dav?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("si mirror push copies the primary's published tree to both, byte for byte", () => {
    expect(push.status, push.stdout + push.stderr).toBe(0);
    const primary = treeFiles(t.inst.publish);
    for (const [name, s] of Object.entries(served)) {
      const copy = treeFiles(s.root);
      expect([...copy.keys()].sort(), name).toEqual([...primary.keys()].sort());
      for (const [rel, data] of primary) expect(copy.get(rel)!.equals(data), `${name}: ${rel}`).toBe(true);
    }
  });

  for (const name of ["dav", "dir"] as const) {
    it(`upgrades a build 0 device to full 2, and a build 1 device with the delta, from the ${name} mirror's nginx alone`, async () => {
      const nginx = served[name].nginx!;
      const [full1, full2, delta] = t.index().images;
      const ref2 = referenceSystem(scratch, t.inst.publish, full2);

      const fresh = await device(nginx, { buildNumber: 0 });
      expect([fresh.outcome, fresh.path]).toEqual(["applied", "2"]);
      expect(fresh.ubuntuCommand).toContain("format system");
      expect(compareTrees(fresh.systemDir, ref2)).toEqual([]);
      expect(fresh.buildNumber).toBe(2);
      for (const r of fresh.trace) expect([r.url.startsWith(nginx.url), r.status]).toEqual([true, 200]);

      const old = await device(nginx, { buildNumber: 1, system: referenceSystem(scratch, t.inst.publish, full1) });
      expect([old.outcome, old.path]).toEqual(["applied", "2"]);
      expect(old.ubuntuCommand).not.toContain("format system");
      for (const f of delta.files) expect(old.ubuntuCommand).toContain(f.path.split("/").pop());
      expect(compareTrees(old.systemDir, ref2)).toEqual([]);
      for (const r of old.trace) expect(r.url.startsWith(nginx.url)).toBe(true);

      const log = readFileSync(nginx.accessLog, "utf8");
      for (const f of [...full2.files, ...delta.files]) expect(log).toContain(`GET ${f.path} 200 `);
    });
  }

  it("carries a later change to both on the next push: tag-image's image 3 reaches build 2 devices there", async () => {
    // tag-image publishes the tagged image as a new version (a copy with the tag in version_detail).
    const tag = await t.inst.siAsync("tag-image", "devel", "mako", "2", "mirrored");
    expect(tag.status, tag.stdout + tag.stderr).toBe(0);
    const again = await t.inst.siAsync("mirror", "push");
    expect(again.status, again.stdout + again.stderr).toBe(0);
    const [, full2] = t.index().images;
    const ref2 = referenceSystem(scratch, t.inst.publish, full2);
    for (const [name, s] of Object.entries(served)) {
      for (const f of ["channels.json", "channels.json.asc"])
        expect(readFileSync(join(s.root, f)).equals(readFileSync(join(t.inst.publish, f))), `${name}: ${f}`).toBe(true);
      const run = await device(s.nginx!, { buildNumber: 2, system: ref2 });
      expect([run.outcome, run.path, run.buildNumber], name).toEqual(["applied", "3", 3]);
      for (const r of run.trace) expect([r.url.startsWith(s.nginx!.url), r.status]).toEqual([true, 200]);
    }
  });
});
