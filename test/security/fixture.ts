/**
 * A small published tree for the key-lifecycle and hostile-input tests: test keys, every
 * keyring built and published, devel/mako with one full image (pool tarballs made by GNU tar
 * and xz, a version tarball), through the real CLI.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { verifyTree } from "../../src/verify/index.js";
import { formatReport } from "../../src/verify/report.js";
import { adminFixture, poolTarball, publishFull, type AdminFixture } from "../admin/fixture.js";

export async function publishedTree(): Promise<AdminFixture> {
  const fx = await adminFixture({ keyrings: true });
  for (const k of ["archive-master", "image-master", "image-signing", "device-signing", "blacklist"]) fx.ok("keyring", "publish", k);
  fx.ok("channel", "create", "devel");
  fx.ok("device", "create", "devel", "mako");
  await poolTarball(fx, "pool/ubports-aaaa.tar.xz", { "system/etc/os-release": "NAME=UT 1\n" });
  await poolTarball(fx, "pool/device-dddd.tar.xz", { "system/vendor/blob": "blob\n" });
  await publishFull(fx, "devel", "mako", 1, ["pool/ubports-aaaa.tar.xz", "pool/device-dddd.tar.xz"], ["tag=one"]);
  return fx;
}

/** verify-tree as the oracle: no errors, or fail with its report. */
export async function expectTreeVerifies(fx: AdminFixture): Promise<void> {
  const rep = await verifyTree(fx.config, {});
  expect(rep.errors, formatReport(rep).join("\n")).toBe(0);
}

/** Every file under `dir` → its bytes (hex digest would do; the trees here are small). */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out.set(p.slice(dir.length), readFileSync(p).toString("base64"));
    }
  };
  walk(dir);
  return out;
}
