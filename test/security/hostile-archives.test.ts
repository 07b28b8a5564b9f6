/**
 * Hostile archives: every piece that reads a tarball reads it as a stream and never extracts
 * it, so names with `..`, absolute paths, links leaving the root and device nodes are data;
 * malformed ones (a member longer than the archive, a NUL in a name, a bogus pax size,
 * corrupt or truncated compression, decompression bombs) fail with an error that says so.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decompressBuffer } from "../../src/archive/compression.js";
import { openImageTar } from "../../src/archive/diff/scan.js";
import { readTar } from "../../src/archive/tar/index.js";
import { ArchiveError } from "../../src/errors.js";
import { readKeyringTarball } from "../../src/pgp/keyring.js";
import { runSi } from "../helpers/instance.js";
import { tempDir, writeTarWithPython, xzFile, type FixtureEntry } from "../helpers/tar-fixtures.js";

async function readAll(input: NodeJS.ReadableStream): Promise<string[]> {
  const names: string[] = [];
  for await (const { header, body } of readTar(input)) {
    names.push(header.name);
    for await (const _ of body) void _;
  }
  return names;
}

/** A pax tar written by Python whose one member carries `pax` records verbatim. */
function paxTar(path: string, pax: Record<string, string>, content = "x"): Buffer {
  const py = `
import io, sys, tarfile, json
pax = json.loads(sys.argv[2])
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as tf:
    ti = tarfile.TarInfo("plain")
    ti.size = len(sys.argv[3])
    ti.pax_headers = pax
    tf.addfile(ti, io.BytesIO(sys.argv[3].encode()))
`;
  execFileSync("python3", ["-c", py, path, JSON.stringify(pax), content]);
  return readFileSync(path);
}

const HOSTILE: FixtureEntry[] = [
  { name: "system", type: "directory" },
  { name: "system/ok", content: "fine\n" },
  { name: "../escape", content: "dot-dot\n" },
  { name: "/etc/abs", content: "absolute\n" },
  { name: "system/up", type: "link", linkname: "../../etc/passwd" },
  { name: "system/etc", type: "symlink", linkname: "/etc" },
  { name: "system/etc/through-link", content: "via symlink\n" },
  { name: "system/dev/null", type: "character-device", devmajor: 1, devminor: 3 },
  { name: "system/dev/sda", type: "block-device", devmajor: 8, devminor: 0 },
];

describe("tar members that would escape an extraction", () => {
  it("are read as data by the streaming reader (nothing is created on disk)", async () => {
    const dir = tempDir();
    const tar = writeTarWithPython(join(dir, "hostile.tar"), HOSTILE);
    const names = await readAll(Readable.from([readFileSync(tar)]));
    expect(names).toEqual(HOSTILE.map((e) => e.name));
    expect(readdirSync(dir)).toEqual(["hostile.tar"]);
  });

  it("si diff between two hostile images writes the delta and nothing else, anywhere", () => {
    const dir = tempDir();
    const work = join(dir, "work");
    execFileSync("mkdir", ["-p", join(work, "sub")]);
    const old = xzFile(writeTarWithPython(join(dir, "old.tar"), HOSTILE.slice(0, 3)));
    const neu = xzFile(writeTarWithPython(join(dir, "new.tar"), [...HOSTILE, { name: "../escape", content: "changed\n" }]));
    const r = runSi(["diff", old, neu, "-o", join(work, "sub", "delta.tar.xz"), "--list"], { cwd: join(work, "sub") });
    expect(r.status, r.stderr).toBe(0);
    // The delta names the hostile members (the device's recovery decides), but none was created.
    const listed = execFileSync("tar", ["-tJf", join(work, "sub", "delta.tar.xz")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    expect(listed).toContain("../escape");
    expect(readdirSync(work)).toEqual(["sub"]);
    expect(readdirSync(join(work, "sub"))).toEqual(["delta.tar.xz"]);
    expect(readdirSync(dir).sort()).toEqual(["new.tar.xz", "old.tar.xz", "work"]);
    expect(existsSync("/etc/abs")).toBe(false);
  });

  it("a keyring tarball with ../ or ./ names is refused (the client would crash on it)", async () => {
    const dir = tempDir();
    const tar = xzFile(
      writeTarWithPython(join(dir, "k.tar"), [
        { name: "../keyring.json", content: '{"type": "image-signing"}' },
        { name: "./keyring.gpg", content: "x" },
      ]),
    );
    await expect(readKeyringTarball(tar)).rejects.toThrow(
      /must hold keyring.json and keyring.gpg \(has: \.\.\/keyring.json, \.\/keyring.gpg\)/,
    );
  });
});

describe("malformed tar", () => {
  it("a member larger than the archive: unexpected end of data, naming the member", async () => {
    const dir = tempDir();
    const tar = readFileSync(writeTarWithPython(join(dir, "t.tar"), [{ name: "big", content: Buffer.alloc(100_000, 7) }]));
    await expect(readAll(Readable.from([tar.subarray(0, 20_000)]))).rejects.toThrow(
      /unexpected end of data in 'big'|Cannot read tar archive/,
    );
  });

  it("a damaged header: bad checksum at its byte offset", async () => {
    const dir = tempDir();
    const tar = Buffer.from(
      readFileSync(
        writeTarWithPython(join(dir, "t.tar"), [
          { name: "a", content: "1" },
          { name: "b", content: "2" },
        ]),
      ),
    );
    tar[1024 + 10] ^= 0xff; // inside the second member's name
    await expect(readAll(Readable.from([tar]))).rejects.toThrow("Cannot read tar archive: bad header checksum at byte 1024");
  });

  it("a NUL in a pax name is refused", async () => {
    const dir = tempDir();
    const tar = paxTar(join(dir, "nul.tar"), { path: "system/evil\u0000.so" });
    await expect(readAll(Readable.from([tar]))).rejects.toThrow(/member name "system\/evil\\u0000.so" contains a NUL byte/);
  });

  it("a pax size that is not a number is refused", async () => {
    const dir = tempDir();
    const tar = paxTar(join(dir, "size.tar"), { size: "-5" });
    await expect(readAll(Readable.from([tar]))).rejects.toThrow(/member 'plain' has an invalid size "-5"/);
  });
});

describe("broken and hostile compression", () => {
  it("a truncated xz image: the diff fails with an xz error and writes no delta", () => {
    const dir = tempDir();
    const good = xzFile(writeTarWithPython(join(dir, "a.tar"), [{ name: "f", content: Buffer.alloc(200_000, 1) }]));
    const data = readFileSync(good);
    const cut = join(dir, "cut.tar.xz");
    writeFileSync(cut, data.subarray(0, data.length - 40));
    const r = runSi(["diff", good, cut, "-o", join(dir, "d.tar.xz")], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^si: error: .*(xz|unexpected end)/im);
    expect(existsSync(join(dir, "d.tar.xz"))).toBe(false);
  });

  it("corrupt gzip: a clear error", async () => {
    const gz = Buffer.from(gzipSync(Buffer.alloc(10_000, 3)));
    gz[gz.length - 6] ^= 0xff; // the CRC
    await expect(decompressBuffer(gz, "ramdisk of boot.img")).rejects.toThrow(/Cannot decompress ramdisk of boot.img: gzip: /);
  });

  it("a gzip bomb and an xz bomb in memory stop at the cap", async () => {
    const zeros = Buffer.alloc(8 << 20);
    await expect(decompressBuffer(gzipSync(zeros), "ramdisk", 1 << 20)).rejects.toThrow(/ramdisk: it expands to more than 1048576 bytes/);
    const xz = execFileSync("xz", ["-z", "-c", "-1"], { input: zeros });
    await expect(decompressBuffer(xz, "ramdisk", 1 << 20)).rejects.toThrow(/ramdisk: it expands to more than 1048576 bytes/);
    expect((await decompressBuffer(gzipSync(zeros), "ramdisk")).data.length).toBe(zeros.length);
  });

  it("an image that expands past the cap fails while streaming", async () => {
    const dir = tempDir();
    const bomb = join(dir, "bomb.tar.xz");
    const tar = readFileSync(writeTarWithPython(join(dir, "bomb.tar"), [{ name: "zeros", content: Buffer.alloc(16 << 20) }]));
    writeFileSync(bomb, execFileSync("xz", ["-z", "-c", "-9"], { input: tar, maxBuffer: 1 << 26 }));
    expect(readFileSync(bomb).length).toBeLessThan(16 << 10); // > 1000:1
    const err = await readAll(await openImageTar(bomb, { maxExpanded: 4 << 20 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect((err as Error).message).toBe(`Cannot read image '${bomb}': it expands to more than ${4 << 20} bytes (decompression bomb?)`);
    expect(await readAll(await openImageTar(bomb))).toEqual(["zeros"]);
  });

  it("garbage with an xz magic: xz's own reason", async () => {
    const dir = tempDir();
    const f = join(dir, "junk.tar.xz");
    writeFileSync(f, Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(4096, 0x41)]));
    const r = spawnSync("xz", ["-t", f]);
    expect(r.status).not.toBe(0);
    await expect(readAll(await openImageTar(f))).rejects.toThrow(/xz|format|corrupt/i);
  });
});
