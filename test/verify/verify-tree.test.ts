/**
 * `si verify-tree` on a real tree made by `si import-images` (full 1, full 2, delta 2←1):
 * clean, then with one byte flipped in each file in turn (each must be reported, and only it),
 * then with expired / expiring keyrings, missing and orphaned files, documents that devices
 * choke on, and device keyrings. Run: `npx vitest run test/verify/verify-tree.test.ts`.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { buildKeyrings } from "../../src/pgp/keyring-build.js";
import { writeKeyringTarball } from "../../src/pgp/keyring.js";
import { loadSigningKey } from "../../src/pgp/keys.js";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import { Tree } from "../../src/tree/index.js";
import type { TreeReport } from "../../src/verify/report.js";
import { runSiAsync } from "../helpers/instance.js";
import { buildImportedTree, type ImportedTree } from "../e2e/tree-fixture.js";

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

interface Copy {
  base: string;
  www: string;
  config: string;
  run(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }>;
  report(): Promise<{ status: number; report: TreeReport }>;
}

let t: ImportedTree;

/** A copy of the published tree with its own config; keys and trust root stay the original's. */
function copyTree(opts: { keyrings?: string } = {}): Copy {
  const base = mkdtempSync(join(tmpdir(), "si-verify-"));
  const www = join(base, "www");
  cpSync(t.inst.publish, www, { recursive: true });
  const config = join(base, "config");
  writeFileSync(
    config,
    `[global]\nbase_path = ${base}\ngpg_key_path = ${t.inst.keys}\ngpg_keyring_path = ${opts.keyrings ?? t.inst.keyrings}\npublic_fqdn = system-image.example.net\n`,
  );
  const run = (...args: string[]) => runSiAsync(["--config", config, "verify-tree", ...args]);
  return {
    base,
    www,
    config,
    run,
    async report() {
      const r = await run("--json");
      expect(r.stderr).toBe("");
      return { status: r.status, report: JSON.parse(r.stdout) as TreeReport };
    },
  };
}

const signer = () => new LocalSigner(t.inst.keys);
/** The index devel/mako's devices read: the content-named copy channels.json names (src/tree/versioned-index.ts). */
const namedIndex = (www: string) =>
  (
    JSON.parse(readFileSync(join(www, "channels.json"), "utf8")) as Record<string, { devices: Record<string, { index: string }> }>
  ).devel.devices.mako.index.slice(1);
const files = (r: TreeReport, severity?: "error" | "warning") => [
  ...new Set(r.problems.filter((p) => !severity || p.severity === severity).map((p) => p.file)),
];

beforeAll(async () => {
  t = await buildImportedTree();
});

describe("si verify-tree", () => {
  it("passes the tree import-images made, and says what it checked", async () => {
    const c = copyTree();
    const r = await c.run();
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toBe(`OK: 0 errors, 0 warnings; 23 signatures, 7 files, 1 index, 5 keyrings checked in ${c.www}\n`);
    const { report } = await c.report();
    expect(report).toMatchObject({ ok: true, errors: 0, warnings: 0, problems: [], skipped: [] });
    // 4 published keyrings + the trust root; channels.json, index.json and its three content-named
    // copies (empty device, v1, v2: superseded ones are kept a while), 7 image files, 7 sidecars, 4 keyrings.
    expect(namedIndex(c.www)).toMatch(/^devel\/mako\/index-[0-9a-f]{16}\.json$/);
    expect(report.checked).toEqual({ signatures: 23, files: 7, indexes: 1, keyrings: 5 });
  });

  it("names exactly the file whose byte was flipped, for every file of the tree", async () => {
    const all = walk(t.inst.publish)
      .map((f) => relative(t.inst.publish, f))
      .sort();
    // Every kind: documents, pool tarballs, the delta, version tarballs, sidecars, each .asc, gpg/.
    expect(all.filter((f) => f.startsWith("gpg/") && f.endsWith(".tar.xz"))).toHaveLength(4);
    expect(all.some((f) => f.includes(".delta-"))).toBe(true);
    expect(all.filter((f) => f.endsWith(".asc"))).toHaveLength(23);
    const failures: string[] = [];
    const check = async (file: string) => {
      const c = copyTree();
      const path = join(c.www, file);
      const bytes = readFileSync(path);
      bytes[bytes.length >> 1] ^= 0x01;
      writeFileSync(path, bytes);
      const { status, report } = await c.report();
      const named = files(report);
      if (status !== 1 || report.errors === 0 || named.length !== 1 || named[0] !== file) {
        failures.push(`${file}: status ${status}, problems ${JSON.stringify(report.problems)}`);
      }
      rmSync(c.base, { recursive: true, force: true });
    };
    // Catalogue caches (issue 19, `.catalogue.gz`) are unsigned and checked against their pool
    // file's sha256 when read: a damaged one is rebuilt, it is not a tree error.
    const checked = all.filter((f) => !f.endsWith(".catalogue.gz"));
    for (let i = 0; i < checked.length; i += 4) await Promise.all(checked.slice(i, i + 4).map(check));
    expect(failures).toEqual([]);
  });

  it("prints one line per problem naming the file, then the summary, and exits 1", async () => {
    const c = copyTree();
    const idx = JSON.parse(readFileSync(join(c.www, "devel/mako/index.json"), "utf8")) as IndexDoc;
    const pool = idx.images[0].files[1].path.slice(1);
    writeFileSync(join(c.www, pool), "not the device tarball");
    const r = await c.run();
    expect(r.status).toBe(1);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.slice(0, -1)).toEqual([
      `error: ${pool}: does not match its signature ${pool.split("/").pop()}.asc: the file changed after it was signed`,
      expect.stringMatching(
        new RegExp(
          `^error: ${pool}: sha256 [0-9a-f]{64} differs from the checksum ${idx.images[0].files[1].checksum} in ${namedIndex(c.www)}: devices reject it \\(HASH ERROR\\)$`,
        ),
      ),
      `error: ${pool}: is 22 bytes, ${namedIndex(c.www)} says ${idx.images[0].files[1].size} (upgrade paths are scored by size)`,
    ]);
    expect(lines.at(-1)).toMatch(/^FAILED: 3 errors, 0 warnings; 23 signatures, 7 files, 1 index, 5 keyrings checked in /);
  });

  it("fails on an expired image-signing keyring and only warns about one expiring within --warn-days", async () => {
    for (const [days, status, severity, message] of [
      [-1, 1, "error", /^image-signing keyring expired on \d{4}-\d\d-\d\dT[\d:]+Z: devices refuse it/],
      [10, 0, "warning", /^image-signing keyring expires in 9 days \(/],
    ] as const) {
      const keyrings = mkdtempSync(join(tmpdir(), "si-keyrings-"));
      await buildKeyrings({
        keyPath: t.inst.keys,
        keyringPath: keyrings,
        signer: signer(),
        imageSigningDays: days,
        deviceSigningDays: 31,
        only: ["image-signing"],
      });
      const c = copyTree();
      for (const f of ["image-signing.tar.xz", "image-signing.tar.xz.asc"]) copyFileSync(join(keyrings, f), join(c.www, "gpg", f));
      const { status: s, report } = await c.report();
      expect(s).toBe(status);
      expect(report.problems).toEqual([{ severity, file: "gpg/image-signing.tar.xz", message: expect.stringMatching(message) as string }]);
    }
    // With --warn-days 5, ten days left is fine.
    const keyrings = mkdtempSync(join(tmpdir(), "si-keyrings-"));
    await buildKeyrings({
      keyPath: t.inst.keys,
      keyringPath: keyrings,
      signer: signer(),
      imageSigningDays: 10,
      deviceSigningDays: 31,
      only: ["image-signing"],
    });
    const c = copyTree();
    for (const f of ["image-signing.tar.xz", "image-signing.tar.xz.asc"]) copyFileSync(join(keyrings, f), join(c.www, "gpg", f));
    expect((await c.run("--warn-days", "5")).stdout).toMatch(/^OK: 0 errors, 0 warnings/);
  });

  it("reports a missing image file as an error and a stray file as an orphan warning", async () => {
    const c = copyTree();
    const idx = JSON.parse(readFileSync(join(c.www, "devel/mako/index.json"), "utf8")) as IndexDoc;
    const version1 = idx.images[0].files[3].path.slice(1);
    rmSync(join(c.www, version1));
    writeFileSync(join(c.www, "robots.txt"), "User-agent: *\n");
    mkdirSync(join(c.www, "devel/old"));
    const { status, report } = await c.report();
    expect(status).toBe(1);
    expect(report.problems).toEqual([
      { severity: "error", file: version1, message: `missing: listed by ${namedIndex(c.www)}` },
      { severity: "warning", file: "devel/old", message: expect.stringMatching(/^orphaned: /) as string },
      { severity: "warning", file: "robots.txt", message: expect.stringMatching(/^orphaned: /) as string },
    ]);
    rmSync(join(c.www, "robots.txt"));
    writeFileSync(join(c.www, version1), "x");
    const again = await c.report();
    expect(files(again.report, "error")).toEqual([version1]); // present again, but not the signed bytes
  });

  it("falls back to the published archive-master with a warning when the trust root is absent", async () => {
    const c = copyTree({ keyrings: mkdtempSync(join(tmpdir(), "si-empty-")) });
    const { status, report } = await c.report();
    expect(status).toBe(0);
    expect(report.problems).toEqual([
      { severity: "warning", file: "gpg/archive-master.tar.xz", message: expect.stringMatching(/^the trust root .* is absent/) as string },
    ]);
  });

  it("flags documents devices choke on, even when they are properly signed", async () => {
    const c = copyTree();
    const indexFile = join(c.www, namedIndex(c.www));
    const idx = JSON.parse(readFileSync(indexFile, "utf8")) as IndexDoc;
    idx.global.generated_at = "2026-11-29T05:43:07Z";
    idx.images[1].version = 70000;
    idx.images[0].files[2].signature = "/pool/elsewhere.asc";
    writeFileSync(indexFile, JSON.stringify(idx, null, 4) + "\n");
    await signer().signFile("image-signing", indexFile);
    const channelsFile = join(c.www, "channels.json");
    writeFileSync(channelsFile, JSON.stringify({ ...JSON.parse(readFileSync(channelsFile, "utf8")), empty: { hidden: true } }, null, 4));
    await signer().signFile("image-signing", channelsFile);
    const { status, report } = await c.report();
    expect(status).toBe(1);
    const messages = (file: string) => report.problems.filter((p) => p.file === file).map((p) => p.message);
    expect(messages("channels.json")).toEqual([expect.stringMatching(/^channel "empty" has no "devices" object/)]);
    // The installers' index.json no longer holds what devices read.
    expect(messages("devel/mako/index.json")).toEqual([
      expect.stringMatching(/^differs from devel\/mako\/index-[0-9a-f]{16}\.json, which channels\.json names/),
    ]);
    expect(messages(namedIndex(c.www))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^global\.generated_at "2026-11-29T05:43:07Z" is not like "Sun Nov 29 05:43:07 UTC 2026"/),
        expect.stringMatching(/^image #1 version 70000 is not an integer 1\.\.65535/),
        expect.stringMatching(/^image #0 \(version 1\) file #2 signature "\/pool\/elsewhere\.asc" is not path \+ "\.asc"/),
      ]),
    );
  });

  it("reports a published path that breaks the rule (issue 13), moved and re-signed so nothing else is wrong", async () => {
    const c = copyTree();
    const indexFile = join(c.www, namedIndex(c.www));
    const idx = JSON.parse(readFileSync(indexFile, "utf8")) as IndexDoc;
    const f = idx.images[0].files[0];
    const bad = f.path.replace("/pool/", "/pool/.hidden/");
    mkdirSync(join(c.www, "pool/.hidden"));
    for (const ext of ["", ".asc"]) copyFileSync(join(c.www, f.path + ext), join(c.www, bad + ext));
    f.path = bad;
    f.signature = `${bad}.asc`;
    writeFileSync(indexFile, JSON.stringify(idx, null, 4) + "\n");
    await signer().signFile("image-signing", indexFile);
    const { status, report } = await c.report();
    expect(status).toBe(1);
    const errors = report.problems.filter((p) => p.severity === "error");
    expect(errors).toEqual([
      {
        severity: "error",
        file: namedIndex(c.www),
        message: expect.stringMatching(
          new RegExp(
            `^image #0 \\(version 1\\) file #0 path "${bad.replace(/\./g, "\\.")}" is unsafe: the component "\\.hidden" starts with a dot \\(devices store files by basename`,
          ),
        ) as string,
      },
    ]);
  });

  it("rejects a file signed by a key outside image-signing, naming its .asc", async () => {
    const c = copyTree();
    const idx = JSON.parse(readFileSync(join(c.www, "devel/mako/index.json"), "utf8")) as IndexDoc;
    const delta = idx.images[2].files[0].path.slice(1);
    await signer().signFile("device-signing", join(c.www, delta));
    const device = (await loadSigningKey(t.inst.keys, "device-signing")).fingerprint;
    const { report } = await c.report();
    expect(report.problems).toEqual([
      {
        severity: "error",
        file: `${delta}.asc`,
        message: `is not a valid signature of ${delta} by image-signing: signed by ${device}, which is not in the trusted keyring`,
      },
    ]);
  });

  it("accepts index and files signed by a device keyring only when channels.json advertises it", async () => {
    const c = copyTree();
    const indexFile = join(c.www, namedIndex(c.www));
    await signer().signFile("device-signing", indexFile);
    expect(files((await c.report()).report)).toEqual([`${namedIndex(c.www)}.asc`]);

    for (const f of ["device-signing.tar.xz", "device-signing.tar.xz.asc"])
      copyFileSync(join(t.inst.keyrings, f), join(c.www, "devel/mako", f.replace("device-signing", "device")));
    const tree = new Tree(await loadConfig(c.config));
    await tree.setDeviceKeyring("devel", "mako", join(c.www, "devel/mako/device.tar.xz"));
    const ok = await c.report();
    expect(ok.report.problems).toEqual([]);
    expect(ok.report.checked.keyrings).toBe(6);

    // A device keyring for another model is refused by the device.
    const other = mkdtempSync(join(tmpdir(), "si-model-"));
    const gpg = (await loadSigningKey(t.inst.keys, "device-signing")).publicBinary;
    await writeKeyringTarball(
      join(other, "device.tar.xz"),
      { type: "device-signing", model: "hammerhead", expiry: Math.floor(Date.now() / 1000) + 86400 * 60 },
      gpg,
    );
    copyFileSync(join(other, "device.tar.xz"), join(c.www, "devel/mako/device.tar.xz"));
    await signer().signFile("image-signing", join(c.www, "devel/mako/device.tar.xz"));
    const bad = await c.report();
    expect(bad.report.problems).toEqual([
      {
        severity: "error",
        file: "devel/mako/device.tar.xz",
        message: expect.stringMatching(/^keyring keyring\.json model is "hammerhead" but the keyring is for device "mako"/) as string,
      },
    ]);
  });

  it("fails every image-signing signature once the blacklist holds the image-signing key", async () => {
    const c = copyTree();
    const dest = join(c.www, "gpg/blacklist.tar.xz");
    await writeKeyringTarball(dest, { type: "blacklist" }, (await loadSigningKey(t.inst.keys, "image-signing")).publicBinary);
    await signer().signFile("image-master", dest);
    const { status, report } = await c.report();
    expect(status).toBe(1);
    expect(report.problems).toContainEqual({
      severity: "error",
      file: "channels.json.asc",
      message: expect.stringMatching(/by image-signing: signed by blacklisted key/) as string,
    });
    expect(files(report).every((f) => f.endsWith(".asc"))).toBe(true);
    expect(statSync(dest).size).toBeGreaterThan(0);
  });
});
