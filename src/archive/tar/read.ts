/**
 * Streaming tar reader with Python tarfile's normalisation (server-reference §6.1): GNU L/K
 * records and pax path/linkpath merged, directory names without trailing "/", old-style
 * regular entries named "x/" read as directories, the raw type character kept ("0" vs "\0").
 * One entry at a time; only the current entry's header and one input chunk are in memory.
 */
import { Readable } from "node:stream";
import { ArchiveError } from "../../errors.js";
import { BLOCK, F, POSIX_MAGIC, checksums, readNumber, readString } from "./header.js";
import { ByteSource, type TarInput } from "./source.js";
import type { TarEntry, TarEntryType, TarHeader } from "./types.js";

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file", // contiguous file: a regular file everywhere that matters
  "1": "link",
  "2": "symlink",
  "3": "character-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
};

/** Extension records that describe the next member (their content is metadata, never data). */
const META = new Set(["L", "K", "x", "g"]);
/**
 * Longest metadata record we keep (a long name or pax header, not a member), and the most
 * global pax data kept across the archive. Legal names are at most 4096 bytes (PATH_MAX), so
 * 64 KiB covers any real pax header; a longer record is skipped unread and the member refused,
 * so a 1 MB name costs no memory (issue 13: 2,000 such names drove an import to 2.1 GB).
 */
export const MAX_META = 64 << 10;

/** A refusal about one member (its name as far as known): the inspector names it. */
export class TarMemberError extends ArchiveError {
  constructor(
    readonly member: string,
    readonly reason: string,
  ) {
    super(`Cannot read tar archive: member '${member.length > 200 ? `${member.slice(0, 200)}…` : member}': ${reason}`);
  }
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

function parsePax(buf: Buffer, into: Map<string, string>): void {
  let pos = 0;
  while (pos < buf.length) {
    const sp = buf.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = parseInt(buf.toString("latin1", pos, sp), 10);
    if (!(len > 0) || pos + len > buf.length) throw new ArchiveError(`Cannot read tar archive: malformed pax record`);
    const record = buf.toString("utf8", sp + 1, pos + len - 1); // drop the trailing "\n"
    const eq = record.indexOf("=");
    if (eq > 0) into.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
}

function nulTerminated(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString("utf8", 0, nul === -1 ? buf.length : nul);
}

/** Decodes one member header block, applying pending long names and pax overrides. */
function decodeHeader(
  block: Buffer,
  longName: string | undefined,
  longLink: string | undefined,
  pax: Map<string, string>,
): TarHeader & { dataSize: number } {
  const typeflag = String.fromCharCode(block[156]);
  let name = readString(block, F.name);
  if (block.subarray(257, 263).equals(POSIX_MAGIC) && block[345] !== 0) name = `${readString(block, F.prefix)}/${name}`;
  if (longName !== undefined) name = longName;
  let linkname = longLink ?? readString(block, F.linkname);
  let type: TarEntryType = TYPES[typeflag] ?? "file"; // unknown types extract as regular files (tarfile, GNU tar)
  let size = readNumber(block, F.size, "size");
  let mtime = readNumber(block, F.mtime, "mtime");
  let uid = readNumber(block, F.uid, "uid");
  let gid = readNumber(block, F.gid, "gid");
  let uname = readString(block, F.uname);
  let gname = readString(block, F.gname);
  if (pax.has("path")) name = pax.get("path")!;
  if (pax.has("linkpath")) linkname = pax.get("linkpath")!;
  if (pax.has("size")) size = Number(pax.get("size"));
  if (pax.has("mtime")) mtime = Math.floor(Number(pax.get("mtime")));
  if (pax.has("uid")) uid = Number(pax.get("uid"));
  if (pax.has("gid")) gid = Number(pax.get("gid"));
  if (pax.has("uname")) uname = pax.get("uname")!;
  if (pax.has("gname")) gname = pax.get("gname")!;
  // A pax size is text: "abc" or "-1" would make a member of NaN or negative length.
  if (!Number.isSafeInteger(size) || size < 0)
    throw new ArchiveError(`Cannot read tar archive: member '${name}' has an invalid size ${JSON.stringify(pax.get("size") ?? size)}`);
  // §6.1: an old-style regular entry ending in "/" is a directory.
  if (typeflag === "\0" && name.endsWith("/")) type = "directory";
  if (type === "directory") name = name.replace(/\/+$/, "");
  // Like tarfile: only regular (and unknown) members carry data blocks.
  const dataSize = type === "file" ? size : 0;
  const header: TarHeader & { dataSize: number } = {
    name,
    type,
    mode: readNumber(block, F.mode, "mode"),
    uid,
    gid,
    uname,
    gname,
    mtime,
    size: dataSize,
    typeflag,
    dataSize,
  };
  if (type === "link" || type === "symlink") header.linkname = linkname;
  if (type === "character-device" || type === "block-device") {
    header.devmajor = readNumber(block, F.devmajor, "devmajor");
    header.devminor = readNumber(block, F.devminor, "devminor");
  }
  return header;
}

/**
 * Entries of a tar stream, one at a time. Each body must be consumed (or left alone: it is
 * drained when the next entry is requested, but never read it after that).
 */
export async function* readTar(input: TarInput): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input);
  const globalPax = new Map<string, string>();
  let globalPaxBytes = 0;
  let done = false;
  try {
    for (;;) {
      let longName: string | undefined;
      let longLink: string | undefined;
      const pax = new Map(globalPax);
      let block: Buffer | null;
      for (;;) {
        block = await src.readExact(BLOCK, "header");
        if (block === null || block.every((b) => b === 0)) break;
        const stored = readNumber(block, F.chksum, "checksum");
        if (!checksums(block).includes(stored)) {
          throw new ArchiveError(`Cannot read tar archive: bad header checksum at byte ${src.position - BLOCK}`);
        }
        const flag = String.fromCharCode(block[156]);
        if (!META.has(flag)) break;
        const size = readNumber(block, F.size, "size");
        if (size > MAX_META) {
          // Keep a little of a long name to say which member it was; skip the rest unread.
          const head = (await src.readSome(Math.min(size, 256))) ?? Buffer.alloc(0);
          const shown = flag === "L" ? nulTerminated(head) : readString(block, F.name);
          throw new TarMemberError(
            shown,
            `its ${flag === "L" ? "name" : flag === "K" ? "link target" : "pax header"} is ${size} bytes (more than ${MAX_META})`,
          );
        }
        const data = (await src.readExact(size + padding(size), `'${flag}' record`)) ?? Buffer.alloc(0);
        const content = data.subarray(0, size);
        if (flag === "L") longName = nulTerminated(content);
        else if (flag === "K") longLink = nulTerminated(content);
        else if (flag === "x") parsePax(content, pax);
        else {
          globalPaxBytes += size;
          if (globalPaxBytes > MAX_META)
            throw new ArchiveError(`Cannot read tar archive: global pax headers of more than ${MAX_META} bytes at byte ${src.position}`);
          parsePax(content, globalPax);
          parsePax(content, pax);
        }
      }
      if (block === null || block.every((b) => b === 0)) break; // end of archive
      const flag = String.fromCharCode(block[156]);
      if ("SMV".includes(flag))
        throw new ArchiveError(`Cannot read tar archive: unsupported GNU member type '${flag}' (sparse or multi-volume)`);
      const { dataSize, ...header } = decodeHeader(block, longName, longLink, pax);
      // Only a pax record can carry a NUL: no tar tool or device could name such a file, and a
      // writer would silently cut the name there (a different file than the one we hashed).
      if (header.name.includes("\0") || header.linkname?.includes("\0")) {
        throw new ArchiveError(`Cannot read tar archive: member name ${JSON.stringify(header.name)} contains a NUL byte`);
      }
      let left = dataSize;
      let inflight: Promise<void> = Promise.resolve();
      let abandoned = false;
      const body = new Readable({
        highWaterMark: 1 << 16,
        read(want) {
          if (abandoned) return;
          if (left === 0) {
            this.push(null);
            return;
          }
          inflight = src.readSome(Math.min(left, Math.max(want, 1 << 16))).then(
            (chunk) => {
              if (chunk === null) {
                this.destroy(new ArchiveError(`Cannot read tar archive: unexpected end of data in '${header.name}'`));
                return;
              }
              left -= chunk.length;
              this.push(chunk); // a view of the upstream chunk, which streams never reuse

              if (left === 0) this.push(null);
            },
            (err: unknown) => {
              this.destroy(err as Error);
            },
          );
        },
      });
      yield { header, body };
      abandoned = true;
      await inflight;
      if (left > 0) await src.skip(left, `'${header.name}'`);
      if (!body.readableEnded) body.destroy();
      await src.skip(padding(dataSize), `'${header.name}'`);
    }
    await src.drain();
    done = true;
  } finally {
    if (!done) await src.close();
  }
}
