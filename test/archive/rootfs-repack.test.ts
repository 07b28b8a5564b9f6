import { execFileSync } from "node:child_process";
import {
  createReadStream,
  createWriteStream,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appendedEntries, repackRootfs } from "../../src/archive/rootfs-repack.js";
import { ArchiveError } from "../../src/errors.js";
import { headerMagics, listTarWithPython, tempDir } from "../helpers/tar-fixtures.js";

const LONG = "usr/share/" + "n".repeat(110) + "/file";

/** A real rootfs made by GNU tar + gzip, member names without "./" like cdimage's. */
function makeRootfs(dir: string): string {
  const root = join(dir, "rootfs");
  mkdirSync(join(root, "etc"), { recursive: true });
  mkdirSync(join(root, LONG, ".."), { recursive: true });
  writeFileSync(join(root, "etc/hostname"), "ubuntu-phablet\n");
  writeFileSync(join(root, "etc/mtab"), "dropped\n");
  writeFileSync(join(root, "SWAP.swap"), "dropped too\n");
  writeFileSync(join(root, LONG), "deep\n");
  linkSync(join(root, "etc/hostname"), join(root, "etc/hostname.hard"));
  symlinkSync("/etc/hostname", join(root, "etc/abs-link"));
  symlinkSync("hostname", join(root, "etc/rel-link"));
  const tgz = join(dir, "rootfs.tar.gz");
  execFileSync("tar", ["--format=gnu", "-czf", tgz, "-C", root, "SWAP.swap", "etc", "usr"]);
  return tgz;
}

async function repackTo(tgz: string, out: string, opts: Parameters<typeof repackRootfs>[2]) {
  return repackRootfs(createReadStream(tgz), createWriteStream(out), { xzLevel: 0, ...opts });
}

describe("repackRootfs (§5.4.2)", () => {
  it("prefixes names and hard-link targets with system/, drops SWAP.swap and etc/mtab, appends the touch entries", async () => {
    const dir = tempDir("si-rootfs-");
    const tgz = makeRootfs(dir);
    const out = join(dir, "ubuntu.tar.xz");
    const now = new Date(1_700_000_000_000);
    const r = await repackTo(tgz, out, { product: "touch", now });
    expect(r).toMatchObject({ dropped: 2 });
    const members = listTarWithPython(out);
    const names = members.map((m) => m.name);
    expect(names).not.toContain("system/SWAP.swap");
    expect(names.filter((n) => n === "system/etc/mtab")).toHaveLength(1); // only the appended symlink
    expect(names).toContain(`system/${LONG}`);
    const byName = new Map(members.map((m) => [m.name, m]));
    // GNU tar stores whichever of the two names it meets first as the file, the other as a link.
    const pair = ["system/etc/hostname", "system/etc/hostname.hard"].map((n) => byName.get(n)!);
    const hardLink = pair.find((m) => m.type === "1")!;
    expect(hardLink.linkname).toBe(pair.find((m) => m.type === "0")!.name);
    expect(byName.get("system/etc/abs-link")).toMatchObject({ type: "2", linkname: "/etc/hostname" });
    expect(byName.get("system/etc/rel-link")).toMatchObject({ type: "2", linkname: "hostname" });
    expect(pair.find((m) => m.type === "0")!.content).toBe("ubuntu-phablet\n");
    expect(members.slice(-12).map((m) => [m.name, m.type, m.linkname, m.mode])).toEqual([
      ["system/android", "5", "", 0o755],
      ["system/cache", "2", "/android/cache", 0o755],
      ["system/data", "2", "/android/data", 0o755],
      ["system/factory", "2", "/android/factory", 0o755],
      ["system/firmware", "2", "/android/firmware", 0o755],
      ["system/persist", "2", "/android/persist", 0o755],
      ["system/system", "2", "/android/system", 0o755],
      ["system/odm", "2", "/android/odm", 0o755],
      ["system/vendor", "2", "/android/system/vendor", 0o755],
      ["system/userdata", "5", "", 0o755],
      ["system/etc/mtab", "2", "/proc/mounts", 0o444],
      ["system/lib/modules", "5", "", 0o755],
    ]);
    // Everything before the appended entries comes from the rootfs, in its order.
    expect(members.length - 12).toBe(r.copied);
    for (const m of members.slice(-12)) expect([m.uid, m.gid, m.uname, m.gname, m.mtime]).toEqual([0, 0, "root", "root", 1_700_000_000]);
    expect(headerMagics(out).every((m) => m.startsWith("7573746172202000:"))).toBe(true);
  });

  it("extracts with GNU tar into a working system/ tree (hard link included)", async () => {
    const dir = tempDir("si-rootfs-");
    const out = join(dir, "ubuntu.tar.xz");
    await repackTo(makeRootfs(dir), out, { product: "core" });
    const root = join(dir, "x");
    mkdirSync(root);
    execFileSync("tar", ["--numeric-owner", "-xf", out, "-C", root]);
    expect(lstatSync(join(root, "system/etc/hostname.hard")).ino).toBe(lstatSync(join(root, "system/etc/hostname")).ino);
    expect(readFileSync(join(root, `system/${LONG}`), "utf8")).toBe("deep\n");
    expect(readlinkSync(join(root, "system/etc/mtab"))).toBe("/proc/mounts");
    expect(lstatSync(join(root, "system/writable")).isDirectory()).toBe(true);
  });

  it("core gets system/writable and no Android entries; http-cdimage gets Android entries for any product", () => {
    const core = appendedEntries({ product: "core" }).map((e) => e.name);
    expect(core).toEqual(["system/writable", "system/etc/mtab", "system/lib/modules"]);
    const desktop = appendedEntries({ product: "desktop" }).map((e) => e.name);
    expect(desktop).toEqual(["system/userdata", "system/etc/mtab", "system/lib/modules"]);
    const http = appendedEntries({ product: "core", alwaysAndroid: true }).map((e) => e.name);
    expect(http.slice(0, 9)).toEqual([
      "system/android",
      ...["cache", "data", "factory", "firmware", "persist", "system", "odm", "vendor"].map((n) => `system/${n}`),
    ]);
    expect(http.slice(9)).toEqual(["system/writable", "system/etc/mtab", "system/lib/modules"]);
    expect(appendedEntries({ product: "pd" })[0].name).toBe("system/android");
  });

  it("drops only exact names: ./etc/mtab is kept (as the reference does)", async () => {
    const dir = tempDir("si-rootfs-");
    mkdirSync(join(dir, "r/etc"), { recursive: true });
    writeFileSync(join(dir, "r/etc/mtab"), "kept\n");
    const tgz = join(dir, "dot.tar.gz");
    execFileSync("tar", ["-czf", tgz, "-C", join(dir, "r"), "."]);
    const out = join(dir, "o.tar.xz");
    await repackTo(tgz, out, { product: "core" });
    const names = listTarWithPython(out).map((m) => m.name);
    expect(names.slice(0, 3)).toEqual(["system/.", "system/./etc", "system/./etc/mtab"]);
  });

  it("reports input that is not gzip as ArchiveError", async () => {
    const dir = tempDir("si-rootfs-");
    const bad = join(dir, "bad.tar.gz");
    writeFileSync(bad, "this is not gzip at all");
    await expect(repackTo(bad, join(dir, "o.tar.xz"), { product: "touch" })).rejects.toThrow(ArchiveError);
    await expect(repackTo(bad, join(dir, "o2.tar.xz"), { product: "touch" })).rejects.toThrow(/^Cannot repack rootfs tarball: /);
  });
});
