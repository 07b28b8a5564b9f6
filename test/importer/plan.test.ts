import { describe, expect, it } from "vitest";
import { deltaBases, deltaSource, nextDateTag, nextVersion, resolveEntries, alwaysShipped } from "../../src/importer/plan.js";
import type { Image } from "../../src/model/index-doc.js";

const full = (version: number, files: string[] = [], version_detail?: string): Image => ({
  type: "full",
  version,
  description: "",
  version_detail,
  files: files.map((path, order) => ({ path, signature: path + ".asc", checksum: "0", size: 0, order })),
});
const delta = (version: number, base: number): Image => ({ type: "delta", version, base, description: "", files: [] });

describe("import planning (server-reference §5.6)", () => {
  it("resolves device overrides: the first entry of a name wins, other devices' overrides are skipped", () => {
    const files = ["ubports", "device,mako", "device,flo", "device", "keyring", "version"].map((name) => ({
      name,
      generator: name.startsWith("device") ? "http" : name,
      arguments: [name],
    }));
    const mako = resolveEntries(files, "mako");
    expect(mako.map((e) => [e.fileName, e.entry.name])).toEqual([
      ["ubports", "ubports"],
      ["device", "device,mako"],
      ["keyring", "keyring"],
      ["version", "version"],
    ]);
    expect(resolveEntries(files, "hammerhead").map((e) => e.entry.name)).toEqual(["ubports", "device", "keyring", "version"]);
  });

  it("numbers the next image after the last full, or from versionbase", () => {
    expect(nextVersion([], 7)).toBe(7);
    expect(nextVersion([full(3), delta(5, 3), full(4)], 1)).toBe(5);
  });

  it("takes delta bases only where the building device has that full version", () => {
    const channels = {
      devel: { devices: { mako: { index: "/devel/mako/index.json" } } },
      stable: { devices: { mako: { index: "/stable/mako/index.json" } } },
      empty: { devices: {} },
    };
    const own = [full(1), full(2), full(3)];
    const images: Record<string, Image[]> = { devel: own, stable: [full(2), full(9)] };
    const r = deltaBases(channels, { deltabase: ["devel", "stable", "missing", "empty", "devel"] }, "mako", own, (c) => images[c] ?? []);
    expect(r.bases.map((i) => i.version)).toEqual([3]); // stable's latest (9) is not ours; devel twice = once
    expect(r.warnings.map((w) => w.channel)).toEqual(["missing", "empty"]);
    images.stable = [full(2)];
    expect(
      deltaBases(channels, { deltabase: ["devel", "stable"] }, "mako", own, (c) => images[c] ?? []).bases.map((i) => i.version),
    ).toEqual([3, 2]);
  });

  it("tags images by date and counts repeats of the same day", () => {
    expect(nextDateTag("2026-11-29", undefined)).toBe("2026-11-29");
    expect(nextDateTag("2026-11-29", full(1, [], "tag=2026-11-28,ubports=1,version=1"))).toBe("2026-11-29");
    expect(nextDateTag("2026-11-29", full(1, [], "tag=2026-11-29,ubports=1,version=1"))).toBe("2026-11-29/2");
    expect(nextDateTag("2026-11-29", full(1, [], "ubports=1,tag=2026-11-29/2,version=1"))).toBe("2026-11-29/3");
    // A version_detail with one item (no comma) still yields its tag: the reference's scan bug is fixed.
    expect(nextDateTag("2026-11-29", full(1, [], "tag=2026-11-29"))).toBe("2026-11-29/2");
  });

  it("finds delta sources by prefix with startswith, like the reference", () => {
    const base = full(1, ["/pool/ubports-rootfs-aaa.tar.xz", "/pool/ubports-bbb.tar.xz", "/devel/mako/version-1.tar.xz"]);
    expect(deltaSource(base, "ubports")).toBe("/pool/ubports-rootfs-aaa.tar.xz");
    expect(deltaSource(base, "version")).toBe("/devel/mako/version-1.tar.xz");
    expect(deltaSource(base, "device")).toBeUndefined();
    expect(alwaysShipped("/pool/keyring-abc.tar.xz")).toBe(true);
    expect(alwaysShipped("/pool/boot-abc.tar.xz")).toBe(true);
    expect(alwaysShipped("/pool/ubports-abc.tar.xz")).toBe(false);
  });
});
