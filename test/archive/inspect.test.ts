/**
 * The image inspector (issue 13) on tarballs written by independent tools (Python tarfile,
 * GNU tar) and by our writer: every hostile member is refused with a message naming the image
 * and the member; the benign controls a real rootfs has pass; the catalogue it builds is the
 * one scanImage builds; the catalogue sidecar (issue 19) reads back equal.
 */
import { execFileSync } from "node:child_process";
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  readFileSync,
  symlinkSync,
  linkSync,
  writeFileSync,
  chmodSync,
  truncateSync,
  existsSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  catalogueFileProblem,
  catalogueSidecarPath,
  readCatalogueFile,
  writeCatalogueFile,
} from "../../src/archive/diff/catalogue-file.js";
import { scanImage } from "../../src/archive/diff/scan.js";
import { ImageInspection, TarInspector, normaliseMemberPath } from "../../src/archive/inspect/index.js";
import { GnuTarWriter } from "../../src/archive/tar/write.js";
import { imageLimits } from "../../src/config/types.js";
import type { ImageLimits } from "../../src/config/types.js";
import { orphanedFiles } from "../../src/model/orphans.js";
import { tempDir, writeTarWithPython, xzFile, type FixtureEntry } from "../helpers/tar-fixtures.js";
import { xzBomb } from "../security/import-harness.js";

const FILE = "pool/x.tar.xz";

async function inspectTar(path: string, limits: Partial<ImageLimits> = {}) {
  return new TarInspector({ file: FILE, limits: { ...imageLimits({}), ...limits } }).run(createReadStream(path));
}

/** The compressed file through ImageInspection, chunk by chunk, as the publish pass feeds it. */
async function inspectXz(path: string, limits: Partial<ImageLimits> = {}) {
  const insp = new ImageInspection({ file: FILE, limits: { ...imageLimits({}), ...limits } });
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 16 })) await insp.write(chunk as Buffer);
  } catch (err) {
    insp.abort();
    throw err;
  }
  return insp.end();
}

function pyTar(entries: FixtureEntry[], format: "gnu" | "pax" = "pax"): string {
  return writeTarWithPython(join(tempDir(), "t.tar"), entries, format);
}

const sys: FixtureEntry = { name: "system", type: "directory" };

describe("member path rules (pure)", () => {
  it("normalises ./ and empty components, refuses absolute paths and '..'", () => {
    expect(normaliseMemberPath("./system//usr/./bin/")).toEqual({ path: "system/usr/bin" });
    expect(normaliseMemberPath("./")).toEqual({ path: "" });
    expect(normaliseMemberPath("/abs/path").problem).toBe("absolute path");
    expect(normaliseMemberPath("system/../../x").problem).toBe("path with a '..' component");
    expect(normaliseMemberPath("system/a..b/..c")).toEqual({ path: "system/a..b/..c" });
  });
});

describe("hostile members are refused, naming the image and the member", () => {
  const cases: [string, FixtureEntry[], RegExp][] = [
    [
      "'..' after normalisation",
      [sys, { name: "system/../../x", content: "x" }],
      /member 'system\/\.\.\/\.\.\/x': path with a '\.\.' component/,
    ],
    ["an absolute path", [sys, { name: "/abs/path", content: "x" }], /member '\/abs\/path': absolute path/],
    [
      "a write through a symlink the archive made",
      [sys, { name: "system/escape", type: "symlink", linkname: "/tmp/x" }, { name: "system/escape/f", content: "x" }],
      /member 'system\/escape\/f': it is written through the symlink 'system\/escape'/,
    ],
    [
      "a write through a relative symlink deeper down",
      [sys, { name: "system/a", type: "symlink", linkname: "../.." }, { name: "system/a/b/c", content: "x" }],
      /member 'system\/a\/b\/c': it is written through the symlink 'system\/a'/,
    ],
    [
      "a hard link to /etc/shadow",
      [sys, { name: "system/shadow", type: "link", linkname: "/etc/shadow" }],
      /member 'system\/shadow': absolute hard-link target '\/etc\/shadow'/,
    ],
    [
      "a hard link with '..'",
      [sys, { name: "system/up", type: "link", linkname: "system/../../etc/passwd" }],
      /member 'system\/up': hard-link target with a '\.\.' component/,
    ],
    [
      "a hard link to a member that comes later",
      [sys, { name: "system/l", type: "link", linkname: "system/later" }, { name: "system/later", content: "x" }],
      /member 'system\/l': hard-link target 'system\/later' is not an earlier member/,
    ],
    [
      "a hard link through a symlink",
      [sys, { name: "system/s", type: "symlink", linkname: "/etc" }, { name: "system/h", type: "link", linkname: "system/s/shadow" }],
      /member 'system\/h': hard-link target 'system\/s\/shadow' is reached through the symlink 'system\/s'/,
    ],
    [
      "a 4097-byte name",
      [sys, { name: `system/${"d/".repeat(2044)}xx`, content: "x" }],
      /member 'system\/d\/d\/.*…': name is 4097 bytes \(more than 4096\)/,
    ],
    ["a 256-byte component", [sys, { name: `system/${"n".repeat(256)}`, content: "x" }], /a path component is 256 bytes \(more than 255\)/],
    [
      "a 4097-byte link target",
      [sys, { name: "system/l", type: "symlink", linkname: "t".repeat(4097) }],
      /member 'system\/l': link target is 4097 bytes/,
    ],
    [
      "a character device outside system/dev",
      [sys, { name: "system/tmp/kmem", type: "character-device", devmajor: 1, devminor: 2 }],
      /member 'system\/tmp\/kmem': character device node outside system\/dev\//,
    ],
    [
      "a block device at the top",
      [{ name: "sda", type: "block-device", devmajor: 8, devminor: 0 }],
      /member 'sda': block device node outside system\/dev\//,
    ],
    [
      "a device named like system/dev but elsewhere",
      [{ name: "system/devices", type: "block-device", devmajor: 8 }],
      /member 'system\/devices': block device/,
    ],
    ["a newline in the name (shown escaped, one line)", [{ name: "a\n/../../b", content: "x" }], /member 'a\\x0a\/\.\.\/\.\.\/b'/],
  ];
  it.each(cases)("%s", async (_what, entries, message) => {
    const err = await inspectTar(pyTar(entries)).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(new RegExp(`^Cannot publish image 'pool/x\\.tar\\.xz': `));
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain("\n");
  });

  it("device nodes anywhere pass with image_allow_devices", async () => {
    const cat = await inspectTar(pyTar([{ name: "system/tmp/kmem", type: "character-device", devmajor: 1, devminor: 2 }]), {
      allow_devices: true,
    });
    expect(cat.get("system/tmp/kmem")?.type).toBe("character-device");
  });

  it("a 1 MB GNU long name is refused without being read (the reader keeps 64 KiB at most)", async () => {
    const tar = join(tempDir(), "long.tar");
    const w = new GnuTarWriter(createWriteStream(tar));
    const name = `system/${"a".repeat(1 << 20)}`;
    await w.add({ name, type: "file", mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: 0, size: 1 }, Buffer.from("x"));
    await w.finish();
    await expect(inspectTar(tar)).rejects.toThrow(
      /^Cannot publish image 'pool\/x\.tar\.xz': member 'system\/aaaa.*…': its name is 1048584 bytes \(more than 65536\)$/,
    );
  });

  it("limits: members and expanded bytes", async () => {
    const entries = [sys, { name: "system/a", content: "a" }, { name: "system/b", content: "b".repeat(20_000) }];
    await expect(inspectTar(pyTar(entries), { max_members: 2 })).rejects.toThrow(
      /member 'system\/b': more than 2 members \(image_max_members\)/,
    );
    await expect(inspectTar(pyTar(entries), { max_bytes: 10_000 })).rejects.toThrow(
      /^Cannot publish image 'pool\/x\.tar\.xz': it expands to more than 10000 bytes \(image_max_bytes\)$/,
    );
    expect((await inspectTar(pyTar(entries), { max_members: 3 })).members).toBe(3);
  });

  it("an xz of zeros past the expansion ratio is stopped after 64 MiB (default limits)", async () => {
    const dir = tempDir();
    const path = join(dir, "bomb.tar.xz");
    xzBomb(path, 7 * 1024 ** 3);
    expect(readFileSync(path).length).toBeLessThan(1_500_000);
    await expect(inspectXz(path)).rejects.toThrow(
      /^Cannot publish image 'pool\/x\.tar\.xz': member 'system\/zeros': it expands more than 50 times \(\d+ bytes from \d+ compressed; image_max_ratio\)$/,
    );
  });

  it("random bytes in xz are not a tar archive; an empty tar is not an image", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "random"), Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 7919 + (i >> 3) * 31) & 0xff)));
    await expect(inspectXz(xzFile(join(dir, "random")))).rejects.toThrow(
      /^Cannot publish image 'pool\/x\.tar\.xz': it is not a tar archive \(bad (header checksum at byte 0|checksum field in a header)\)$/,
    );
    execFileSync("tar", ["-cf", join(dir, "empty.tar"), "-T", "/dev/null"]);
    await expect(inspectXz(xzFile(join(dir, "empty.tar")))).rejects.toThrow(
      /^Cannot publish image 'pool\/x\.tar\.xz': it is an empty tar archive \(no members\)$/,
    );
    writeFileSync(join(dir, "plain"), "not xz at all\n");
    await expect(inspectXz(join(dir, "plain"))).rejects.toThrow(/^Cannot publish image 'pool\/x\.tar\.xz': Cannot decompress xz: /);
  });
});

describe("benign controls a real rootfs has", () => {
  it("setuid files, system/dev nodes, 255-byte components, hard links, a symlink replaced by a directory", async () => {
    const entries: FixtureEntry[] = [
      sys,
      { name: "system/bin", type: "directory" },
      { name: "system/bin/su", content: "su", mode: 0o4755 },
      { name: "system/bin/wall", content: "wall", mode: 0o2755 },
      { name: "system/dev", type: "directory" },
      { name: "system/dev/null", type: "character-device", devmajor: 1, devminor: 3 },
      { name: "system/dev/loop0", type: "block-device", devmajor: 7, devminor: 0 },
      { name: `system/${"n".repeat(255)}`, content: "long" },
      { name: "system/bin/su-again", type: "link", linkname: "system/bin/su" },
      { name: "system/etc", type: "symlink", linkname: "/etc" },
      { name: "system/etc", type: "directory" },
      { name: "system/etc/os-release", content: "NAME=UT\n" },
      { name: "system/os-release", type: "symlink", linkname: "/etc/os-release" },
      { name: "system/up", type: "symlink", linkname: "../../../../etc/passwd" },
    ];
    for (const format of ["pax", "gnu"] as const) {
      const cat = await inspectTar(pyTar(entries, format));
      expect(cat.get("system/bin/su")?.mode).toBe(0o4755);
      expect(cat.get("system/dev/null")).toMatchObject({ type: "character-device", devmajor: 1, devminor: 3 });
      expect(cat.get("system/etc")?.type).toBe("directory");
      expect(cat.members).toBe(entries.length);
    }
  });

  it("GNU tar's './' names and hard links: the catalogue equals scanImage's", async () => {
    const dir = tempDir();
    const root = join(dir, "root");
    mkdirSync(join(root, "system/usr/bin"), { recursive: true });
    mkdirSync(join(root, "system/dev"), { recursive: true });
    writeFileSync(join(root, "system/usr/bin/tool"), "#!/bin/sh\n");
    chmodSync(join(root, "system/usr/bin/tool"), 0o4755);
    linkSync(join(root, "system/usr/bin/tool"), join(root, "system/usr/bin/tool2"));
    symlinkSync("/etc/os-release", join(root, "system/os-release"));
    for (let i = 0; i < 50; i++) writeFileSync(join(root, `system/usr/f${i}`), `file ${i}\n`.repeat(i));
    const tar = join(dir, "img.tar.xz");
    execFileSync("tar", ["--format=gnu", "--numeric-owner", "-C", root, "-cJf", tar, "."]);
    const cat = await inspectXz(tar);
    const scanned = await scanImage(tar);
    expect([...cat.all()]).toEqual([...scanned.all()]);
    expect(cat.members).toBe(scanned.members);
    const links = [...cat.all()].filter(([, e]) => e.type === "link");
    expect(links.map(([, e]) => e.linkname)).toEqual([expect.stringMatching(/^\.\/system\/usr\/bin\/tool2?$/)]);
  });
});

describe("catalogue sidecar", () => {
  async function scanned() {
    const dir = tempDir();
    const root = join(dir, "root");
    mkdirSync(join(root, "system/a/b"), { recursive: true });
    writeFileSync(join(root, "system/a/b/f"), "hello\n");
    writeFileSync(join(root, "system/a/g"), "");
    symlinkSync("b/f", join(root, "system/a/link"));
    linkSync(join(root, "system/a/b/f"), join(root, "system/a/hard"));
    const tar = join(dir, "img.tar");
    // Members named without their parent directories: implicit parents in the catalogue.
    execFileSync("tar", [
      "--format=gnu",
      "-C",
      root,
      "-cf",
      tar,
      "--no-recursion",
      "system/a/b/f",
      "system/a/g",
      "system/a/link",
      "system/a/hard",
    ]);
    execFileSync("tar", ["--format=gnu", "-C", root, "-rf", tar, "--no-recursion", "system/a/g"]); // a duplicate
    const pool = join(dir, "pool");
    mkdirSync(pool);
    const poolFile = join(pool, "img-1.tar.xz");
    execFileSync("sh", ["-c", `xz -1 -c ${tar} > ${poolFile}`]);
    return { poolFile, cat: await scanImage(poolFile) };
  }

  it("reads back equal (entries, ordinals, implicit parents, members); wrong sha, damage and absence read as null", async () => {
    const { poolFile, cat } = await scanned();
    const sha = "ab".repeat(32);
    expect(catalogueSidecarPath(poolFile)).toBe(poolFile.replace(/\.tar\.xz$/, ".catalogue.gz"));
    expect(await readCatalogueFile(poolFile, sha)).toBeNull(); // absent
    expect(await catalogueFileProblem(poolFile, sha)).toBeNull(); // absent is not a problem
    await writeCatalogueFile(poolFile, cat, sha);
    expect(await catalogueFileProblem(poolFile, sha)).toBeNull();
    const back = await readCatalogueFile(poolFile, sha);
    expect(back).not.toBeNull();
    expect([...back!.all()]).toEqual([...cat.all()]);
    expect([...back!.all()].some(([, e]) => e.implicit)).toBe(true);
    expect(back!.members).toBe(cat.members);
    expect(back!.members).toBe(5);
    expect(back!.contentBytes).toBe(cat.contentBytes);
    expect(back!.ordinal("system/a/g")).toBe(4);
    expect(await readCatalogueFile(poolFile, "cd".repeat(32))).toBeNull();
    expect(await catalogueFileProblem(poolFile, "cd".repeat(32))).toBe(`made for other bytes (sha256 ${sha})`);

    const side = catalogueSidecarPath(poolFile);
    const good = readFileSync(side);
    truncateSync(side, good.length - 9);
    expect(await readCatalogueFile(poolFile, sha)).toBeNull();
    const corrupt = Buffer.from(good);
    corrupt[corrupt.length >> 1] ^= 0x01;
    writeFileSync(side, corrupt);
    expect(await readCatalogueFile(poolFile, sha)).toBeNull();
    expect(await catalogueFileProblem(poolFile, sha)).toMatch(/^(unreadable|truncated|a malformed)/);
    writeFileSync(side, "not gzip");
    expect(await readCatalogueFile(poolFile, sha)).toBeNull();
    expect(existsSync(side)).toBe(true);
  });

  it("belongs to its pool file: kept beside a referenced one, an orphan otherwise (a crash before the rename)", () => {
    const existing = new Set([
      "/r/pool/a.tar.xz",
      "/r/pool/a.catalogue.gz",
      "/r/pool/a.json",
      "/r/pool/b.catalogue.gz",
      "/r/pool/c.tar.xz",
      "/r/pool/c.catalogue.gz",
    ]);
    expect(orphanedFiles(existing, new Set(), new Set(["/r/pool/a.tar.xz"]))).toEqual([
      "/r/pool/b.catalogue.gz",
      "/r/pool/c.catalogue.gz",
      "/r/pool/c.tar.xz",
    ]);
  });
});
