/**
 * Hostile image tarballs end to end (issue 13, items 4-6): `si import-images` with the `http`
 * generator against a real HTTP server on 127.0.0.1, channel devel with two devices, one of
 * which gets a hostile device tarball (its first image: no delta base). For each case: exit
 * status 1, one error line naming the file and the member, the other device still imports,
 * nothing of the published tree changes but the other device's new image, nothing is
 * written outside the instance, and the whole process tree peaks under 300 MB. Then the
 * benign controls (setuid, system/dev nodes, long legal names, hard links, a symlink replaced
 * by a directory) are published, with their catalogue sidecar.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogueSidecarPath, readCatalogueFile } from "../../src/archive/diff/catalogue-file.js";
import { loadConfig } from "../../src/config/load.js";
import { Tree } from "../../src/tree/index.js";
import { makeDeviceTree, tarXz } from "../importer/fixtures.js";
import { writeTarWithPython, xzFile, type FixtureEntry } from "../helpers/tar-fixtures.js";
import {
  errorLines,
  importHarness,
  longNamesXz,
  runImport,
  treeChanges,
  treeHashes,
  xzBomb,
  type ImportHarness,
} from "./import-harness.js";

const MAX_RSS_MB = 300;

interface Images {
  images: { type: string; version: number; files: { path: string }[] }[];
}
const fulls = (i: Images) => i.images.filter((x) => x.type === "full").map((x) => x.version);
const indexOf = (h: ImportHarness, device: string) =>
  JSON.parse(readFileSync(join(h.inst.publish, `devel/${device}/index.json`), "utf8")) as Images;

describe("hostile image tarballs are refused before anything is signed", () => {
  let h: ImportHarness;
  let goodTar: string;
  const escapeTarget = `/tmp/si-escape-${process.pid}-${Date.now()}`;
  const sys: FixtureEntry = { name: "system", type: "directory" };
  const py = (name: string, entries: FixtureEntry[]) => xzFile(writeTarWithPython(join(h.inputs, `hostile-${name}.tar`), entries));

  beforeAll(async () => {
    h = await importHarness(["good", "bad"]);
    makeDeviceTree(join(h.inputs, "device"));
    goodTar = tarXz(join(h.inputs, "device"), join(h.inputs, "device.tar.xz"), ["partitions", "system"]);
  }, 120_000);
  afterAll(() => h?.close());

  const cases: [string, () => Promise<string>, RegExp][] = [
    [
      "random bytes in xz as the first image (no delta base)",
      async () => {
        const { writeFileSync } = await import("node:fs");
        writeFileSync(join(h.inputs, "random"), Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 2654435761) >>> 24)));
        return xzFile(join(h.inputs, "random"));
      },
      /: it is not a tar archive \(/,
    ],
    [
      "'../../x'",
      async () => py("dotdot", [sys, { name: "../../x", content: "escape\n" }]),
      /: member '\.\.\/\.\.\/x': path with a '\.\.' component$/,
    ],
    ["an absolute path", async () => py("abs", [sys, { name: "/abs/path", content: "abs\n" }]), /: member '\/abs\/path': absolute path$/],
    [
      "a symlink, then a write through it",
      async () =>
        py("through", [
          sys,
          { name: "system/escape", type: "symlink", linkname: escapeTarget },
          { name: "system/escape/f", content: "via link\n" },
        ]),
      /: member 'system\/escape\/f': it is written through the symlink 'system\/escape'/,
    ],
    [
      "a hard link to /etc/shadow",
      async () => py("shadow", [sys, { name: "system/shadow", type: "link", linkname: "/etc/shadow" }]),
      /: member 'system\/shadow': absolute hard-link target '\/etc\/shadow'$/,
    ],
    [
      "a device node outside system/dev",
      async () =>
        py("device", [
          sys,
          { name: "system/bin", type: "directory" },
          { name: "system/bin/mem", type: "character-device", devmajor: 1, devminor: 1 },
        ]),
      /: member 'system\/bin\/mem': character device node outside system\/dev\/ \(image_allow_devices = false\)$/,
    ],
    [
      "2,000 members with 1 MB names",
      async () => {
        const path = join(h.inputs, "names.tar.xz");
        longNamesXz(path, 2000, 1 << 20);
        // Names 1 MiB long and distinct, as GNU tar reads them (the first 3 members: listing all
        // 2 GB of names takes a minute).
        const listed = execFileSync(
          "sh",
          ["-c", `xz -dc '${path}' | head -c 3200000 | tar -tf - 2>/dev/null | awk '{ print length($0), substr($0, length($0) - 11) }'`],
          { encoding: "utf8" },
        );
        expect(listed.trim().split("\n")).toEqual([0, 1, 2].map((i) => `${1 << 20} ${String(i).padStart(12, "0")}`));
        return path;
      },
      /: member 'system\/a+…': its name is 1048577 bytes \(more than 65536\)$/,
    ],
    [
      "a 1 MB xz expanding to 7 GiB of zeros (default limits: the ratio check)",
      async () => {
        const path = join(h.inputs, "bomb.tar.xz");
        xzBomb(path, 7 * 1024 ** 3);
        return path;
      },
      /: member 'system\/zeros': it expands more than 50 times \(\d+ bytes from \d+ compressed; image_max_ratio\)$/,
    ],
  ];

  it.each(cases)(
    "%s",
    async (_what, make, reason) => {
      const hostile = await make();
      h.serveDevice("bad", hostile);
      h.serveDevice("good", goodTar); // a new version: the other device imports in the same run
      const goodBefore = fulls(indexOf(h, "good"));
      const before = treeHashes(h.inst.publish);
      const baseBefore = readdirSync(h.inst.base).sort();

      const run = await runImport(h.inst);

      expect(run.status, run.stdout + run.stderr).toBe(1);
      const errors = errorLines(run);
      expect(errors, run.stdout).toHaveLength(1);
      expect([errors[0].channel, errors[0].device]).toEqual(["devel", "bad"]);
      expect(errors[0].msg).toMatch(/Cannot publish image 'pool\/device-bad-[0-9a-f]+\.tar\.xz'/);
      expect(errors[0].msg).toMatch(reason);
      expect(errors[0].msg).not.toContain("\n");
      expect(run.stderr).not.toMatch(/Error|at .*\.js/); // no stack trace, no crash

      // The other device imported; nothing else changed (bad's files, the pool, the keyrings).
      const good = indexOf(h, "good");
      expect(fulls(good)).toEqual([...goodBefore, (goodBefore.at(-1) ?? 0) + 1]);
      const goodFiles = new Set(good.images.flatMap((i) => i.files.map((f) => f.path.slice(1))));
      const owned = (p: string) =>
        [...goodFiles].some(
          (g) =>
            p === g ||
            p === `${g}.asc` ||
            p === g.replace(/\.tar\.xz$/, ".json") ||
            p === g.replace(/\.tar\.xz$/, ".json.asc") ||
            p === catalogueSidecarPath(g),
        );
      const after = treeHashes(h.inst.publish);
      const changed = treeChanges(before, after).filter(
        (p) => !p.startsWith("devel/good/") && !/^channels\.json(\.asc)?$/.test(p) && !owned(p),
      );
      expect(changed).toEqual([]);
      expect([...after.keys()].filter((p) => p.includes("device-bad") || /\.tmp/.test(p))).toEqual([]);
      expect(indexOf(h, "bad").images).toEqual([]);

      // Nothing written outside the instance.
      expect(readdirSync(run.cwd)).toEqual([]);
      expect(readdirSync(run.tmpdir)).toEqual([]);
      expect(readdirSync(h.inst.base).sort()).toEqual(baseBefore);
      expect(existsSync(escapeTarget)).toBe(false);

      expect(run.peakRssMB).toBeGreaterThan(0);
      expect(run.peakRssMB).toBeLessThanOrEqual(MAX_RSS_MB);
    },
    180_000,
  );

  it("the limits come from the config: image_max_bytes stops the same bomb when the ratio is raised", async () => {
    const { writeFileSync } = await import("node:fs");
    const original = readFileSync(h.inst.config, "utf8");
    writeFileSync(h.inst.config, original.replace("[global]\n", "[global]\nimage_max_ratio = 1000000\nimage_max_bytes = 200000000\n"));
    try {
      const path = join(h.inputs, "bomb2.tar.xz");
      xzBomb(path, 7 * 1024 ** 3);
      h.serveDevice("bad", path);
      const before = treeHashes(h.inst.publish);
      const run = await runImport(h.inst);
      expect(run.status, run.stdout + run.stderr).toBe(1);
      const errors = errorLines(run);
      expect(errors, run.stdout).toHaveLength(1);
      expect(errors[0].msg).toMatch(
        /Cannot publish image 'pool\/device-bad-[0-9a-f]+\.tar\.xz': member 'system\/zeros': it expands to more than 200000000 bytes \(image_max_bytes\)$/,
      );
      expect(treeChanges(before, treeHashes(h.inst.publish))).toEqual([]);
      expect(run.peakRssMB).toBeLessThanOrEqual(MAX_RSS_MB);
    } finally {
      writeFileSync(h.inst.config, original);
    }
  }, 180_000);

  it("benign controls are published, with a catalogue the delta can use", async () => {
    const long = `system/usr/share/${"l".repeat(255)}`;
    const benign = py("benign", [
      sys,
      { name: "system/bin", type: "directory" },
      { name: "system/bin/su", content: "su\n", mode: 0o4755 },
      { name: "system/bin/crontab", content: "cron\n", mode: 0o2755 },
      { name: "system/bin/su2", type: "link", linkname: "system/bin/su" },
      { name: "system/dev", type: "directory" },
      { name: "system/dev/null", type: "character-device", devmajor: 1, devminor: 3 },
      { name: "system/dev/mmcblk0", type: "block-device", devmajor: 179, devminor: 0 },
      { name: "system/usr", type: "directory" },
      { name: "system/usr/share", type: "directory" },
      { name: long, content: "long but legal\n" },
      { name: "system/etc", type: "symlink", linkname: "/etc" },
      { name: "system/etc", type: "directory" },
      { name: "system/etc/hostname", content: "ut\n" },
      { name: "system/os-release", type: "symlink", linkname: "/etc/os-release" },
      { name: "partitions", type: "directory" },
      { name: "partitions/boot.img", content: "boot" },
    ]);
    h.serveDevice("bad", benign);
    const run = await runImport(h.inst);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(errorLines(run)).toEqual([]);
    expect(run.peakRssMB).toBeLessThanOrEqual(MAX_RSS_MB);
    const bad = indexOf(h, "bad");
    expect(bad.images).toHaveLength(1);
    const device = bad.images[0].files.map((f) => f.path.slice(1)).find((p) => p.includes("device-bad-"))!;
    const poolFile = join(h.inst.publish, device);
    const sha = (await import("node:crypto")).createHash("sha256").update(readFileSync(poolFile)).digest("hex");
    const cat = await readCatalogueFile(poolFile, sha);
    expect(cat?.get("system/bin/su")?.mode).toBe(0o4755);
    expect(cat?.get("system/dev/null")?.type).toBe("character-device");
    expect(cat?.get(long)?.sha256).toBe((await import("node:crypto")).createHash("sha256").update("long but legal\n").digest("hex"));
    // Every catalogue belongs to a pool file; none is an orphan, and orphans are none.
    const pool = readdirSync(join(h.inst.publish, "pool"));
    for (const c of pool.filter((n) => n.endsWith(".catalogue.gz"))) expect(pool).toContain(c.replace(/\.catalogue\.gz$/, ".tar.xz"));
    expect(await new Tree(await loadConfig(h.inst.config)).listOrphanedFiles()).toEqual([]);
  }, 180_000);
});
