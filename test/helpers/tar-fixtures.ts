/**
 * Tarball fixtures for archive tests, made by independent tools (Python's tarfile, GNU tar)
 * or by our own writer, plus a Python-based lister to inspect results without our reader.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import { GnuTarWriter } from "../../src/archive/tar/write.js";
import type { TarEntryType, TarHeader } from "../../src/archive/tar/types.js";

export interface FixtureEntry {
  name: string;
  type?: TarEntryType; // default "file"
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Raw type char for regular files ("0" or "\0"). */
  typeflag?: string;
}

/** A fresh directory, removed when the current test ends (callers outside a test clean up). */
export function tempDir(prefix = "si-tar-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  } catch {
    // Not inside a test (beforeAll): the caller removes it.
  }
  return dir;
}

const PY_TYPES: Record<TarEntryType, string> = {
  file: "REGTYPE",
  link: "LNKTYPE",
  symlink: "SYMTYPE",
  directory: "DIRTYPE",
  "character-device": "CHRTYPE",
  "block-device": "BLKTYPE",
  fifo: "FIFOTYPE",
};

const PY_WRITER = `
import base64, io, json, sys, tarfile
spec = json.load(sys.stdin)
fmt = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}[spec["format"]]
with tarfile.open(spec["path"], "w", format=fmt, encoding="utf-8") as tf:
    for e in spec["entries"]:
        ti = tarfile.TarInfo(e["name"])
        ti.type = getattr(tarfile, e["pytype"])
        if e.get("typeflag") == "\\0": ti.type = tarfile.AREGTYPE
        for k in ("mode", "uid", "gid", "uname", "gname", "mtime", "linkname", "devmajor", "devminor"):
            if k in e: setattr(ti, k, e[k])
        data = base64.b64decode(e["content"]) if "content" in e else None
        if data is not None: ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data) if data is not None else None)
`;

/** Writes `entries` with Python's tarfile (default PAX, as the reference's fixtures). */
export function writeTarWithPython(path: string, entries: FixtureEntry[], format: "gnu" | "pax" | "ustar" = "pax"): string {
  const spec = {
    path,
    format,
    entries: entries.map((e) => {
      const { content, type, ...rest } = e;
      const out: Record<string, unknown> = { ...rest, pytype: PY_TYPES[type ?? "file"] };
      if ((type ?? "file") === "file") out.content = Buffer.from(content ?? "").toString("base64");
      return out;
    }),
  };
  const r = spawnSync("python3", ["-c", PY_WRITER], { input: JSON.stringify(spec) });
  if (r.status !== 0) throw new Error(`python tarfile failed: ${r.stderr.toString()}`);
  return path;
}

export function toHeader(e: FixtureEntry): { header: TarHeader; content?: Buffer } {
  const type = e.type ?? "file";
  const content = type === "file" ? Buffer.from(e.content ?? "") : undefined;
  const header: TarHeader = {
    name: e.name,
    type,
    mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    uname: e.uname ?? "root",
    gname: e.gname ?? "root",
    mtime: e.mtime ?? 1_600_000_000,
    size: content?.length ?? 0,
  };
  if (e.linkname !== undefined) header.linkname = e.linkname;
  if (e.devmajor !== undefined) header.devmajor = e.devmajor;
  if (e.devminor !== undefined) header.devminor = e.devminor;
  if (e.typeflag !== undefined) header.typeflag = e.typeflag;
  return content === undefined ? { header } : { header, content };
}

/** Writes `entries` with our GnuTarWriter. */
export async function writeTarWithWriter(path: string, entries: FixtureEntry[]): Promise<string> {
  const w = new GnuTarWriter(createWriteStream(path));
  for (const e of entries) {
    const { header, content } = toHeader(e);
    await w.add(header, content);
  }
  await w.finish();
  return path;
}

/** `xz -z` in place (path -> path.xz); returns the new path. */
export function xzFile(path: string, level = 1): string {
  execFileSync("xz", ["-z", "-f", `-${level}`, "-T1", path]);
  return `${path}.xz`;
}

export interface ListedMember {
  name: string;
  type: string; // raw type char as Python sees it
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  content?: string | null; // UTF-8 of regular files, null otherwise
}

const PY_LISTER = `
import json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:*", encoding="utf-8") as tf:
    for m in tf:
        d = {k: getattr(m, k) for k in ("name", "mode", "uid", "gid", "uname", "gname", "mtime", "size", "linkname", "devmajor", "devminor")}
        d["type"] = m.type.decode("latin1")
        d["content"] = tf.extractfile(m).read().decode("utf-8", "replace") if m.isreg() else None
        out.append(d)
json.dump(out, sys.stdout)
`;

/** Members of a (possibly compressed) tarball as Python's tarfile reads them. */
export function listTarWithPython(path: string): ListedMember[] {
  const r = spawnSync("python3", ["-c", PY_LISTER, path], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python tarfile failed: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString()) as ListedMember[];
}

const PY_MAGICS = `
import io, lzma, sys, tarfile
path = sys.argv[1]
raw = lzma.open(path).read() if path.endswith(".xz") else open(path, "rb").read()
seen = set()
for m in tarfile.open(fileobj=io.BytesIO(raw)):
    for off in (m.offset, m.offset_data - 512):
        block = raw[off:off + 512]
        seen.add(block[257:265].hex() + ":" + chr(block[156]))
print("\\n".join(sorted(seen)))
`;

/**
 * "<magic hex>:<typeflag>" of the first and the last header block of every member: proves
 * the GNU format (magic "ustar  \\0" = 7573746172202000) and the absence of pax 'x' records.
 */
export function headerMagics(path: string): string[] {
  const r = spawnSync("python3", ["-c", PY_MAGICS, path], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr.toString()}`);
  return r.stdout.toString().trim().split("\n");
}
