/**
 * The tree-related helpers of the reference's test_tools (server-reference §10.5, §8.4):
 * extract_files_and_version (its test case: version 12, `device=1.2.3.4,version=12,tag=OTX-x`)
 * and get_required_deltas (the intended semantics of its skipped test, as §5.6 step 3.3
 * states them). The tag helpers are tested in test/model and through tag-image.
 */
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { extractFilesAndVersion, getRequiredDeltas } from "../../src/admin/tools.js";
import { writeVersionSidecar } from "../../src/tree/index.js";
import { signedFile, treeFixture, type TreeFixture } from "../tree/fixture.js";

describe("extract_files_and_version", () => {
  it("leaves out version-<N>.tar.xz, returns its sidecar's version_detail and the other files' real paths", async () => {
    const fx = await treeFixture();
    const version = 12;
    const detail = "device=1.2.3.4,version=12,tag=OTX-x";
    await writeVersionSidecar(
      join(fx.pub, "version-12.tar.xz"),
      { version, channel: "some/channel", device: "testing", versionDetail: detail },
      fx.signer,
    );
    const files = [{ path: "version-12.tar.xz" }, { path: "some/file" }, { path: "some/other" }];
    const out: string[] = [];
    const seen: string[] = [];
    expect(await extractFilesAndVersion(fx.config, files, version, out, (p) => seen.push(p))).toBe(detail);
    expect(out).toEqual([join(fx.pub, "some/file"), join(fx.pub, "some/other")]);
    expect(seen).toEqual([join(fx.pub, "version-12.tar.xz"), ...out]);

    // Another version's tarball is just a file; no sidecar → "".
    const out2: string[] = [];
    expect(await extractFilesAndVersion(fx.config, files, 13, out2)).toBe("");
    expect(out2).toHaveLength(3);
    // Real paths: a symlinked directory is resolved.
    mkdirSync(join(fx.pub, "real"));
    symlinkSync("real", join(fx.pub, "link"));
    const out3: string[] = [];
    await extractFilesAndVersion(fx.config, [{ path: "/link/x.tar.xz" }], 1, out3);
    expect(out3).toEqual([join(fx.pub, "real/x.tar.xz")]);
  });
});

async function fullImage(fx: TreeFixture, channel: string, device: string, version: number): Promise<void> {
  const rel = `${channel}/${device}/f-${version}`;
  await signedFile(fx.signer, join(fx.pub, rel), String(version));
  await (await fx.tree.get_device(channel, device)).create_image("full", version, "", [rel]);
}

describe("get_required_deltas", () => {
  it("uses each delta base's latest full version that the device itself has; a channel not in the config is its own base", async () => {
    const fx = await treeFixture({
      extraConfig: "channels = stable\n[channel_stable]\ndeltabase = stable, rc, devel, missing, empty\n",
    });
    for (const c of ["stable", "rc", "devel", "unconfigured", "empty"]) await fx.tree.create_channel(c);
    for (const c of ["stable", "rc", "devel", "unconfigured"]) await fx.tree.create_device(c, "mako");
    await fullImage(fx, "stable", "mako", 1);
    await fullImage(fx, "stable", "mako", 2);
    await fullImage(fx, "stable", "mako", 3);
    await fullImage(fx, "rc", "mako", 2); // stable has 2: a base
    await fullImage(fx, "devel", "mako", 9); // stable has no 9: no base
    const warnings: string[] = [];
    const bases = await getRequiredDeltas(fx.config, fx.tree, "stable", "mako", { warn: (w) => warnings.push(w) });
    expect(bases.map((b) => b.version)).toEqual([3, 2]);
    expect(warnings).toEqual(["Invalid delta base channel: missing", "Device mako not in delta base channel: empty"]);

    expect(await getRequiredDeltas(fx.config, fx.tree, "unconfigured", "mako")).toEqual([]);
    await fullImage(fx, "unconfigured", "mako", 4);
    await fullImage(fx, "unconfigured", "mako", 5);
    expect((await getRequiredDeltas(fx.config, fx.tree, "unconfigured", "mako")).map((b) => b.version)).toEqual([5]);
  });
});
