/**
 * One validation pass over an image's uncompressed tar stream (issue 13): every member
 * through MemberRules, the image limits (members, expanded bytes, expansion ratio), and in
 * the same pass the image's Catalogue (per path metadata + sha256 of content, as scanImage
 * builds it) for the catalogue sidecar (issue 19). Any refusal is an ArchiveError naming the
 * image file and the member: "Cannot publish image 'pool/x.tar.xz': member 'a/../b': ...".
 *
 * Memory is bounded whatever the input: the tar reader skips metadata records over 64 KiB
 * (MAX_META), members are capped by `image_max_members`, and what the catalogue holds (names
 * and per-member rows) by MAX_NAME_TOTAL.
 */
import { createHash } from "node:crypto";
import type { ImageLimits } from "../../config/types.js";
import { ArchiveError, errorMessage } from "../../errors.js";
import { Catalogue } from "../diff/catalogue.js";
import { TarMemberError, readTar } from "../tar/read.js";
import type { TarInput } from "../tar/source.js";
import type { TarEntry } from "../tar/types.js";
import { MemberRules, normaliseMemberPath } from "./rules.js";

/** The ratio check starts once this much has been expanded (issue 13: "the first 64 MiB"). */
export const RATIO_GRACE_BYTES = 64 * 1024 ** 2;
/**
 * Cap on what the catalogue of one image may hold in memory, counted as the bytes of every
 * member name and link target plus MEMBER_OVERHEAD per member (its row, map entry and string
 * header: ~270 bytes measured for 40-byte names). 96 MiB of this keeps the heap under ~130 MB
 * (~420,000 members with 40-byte names, ~23,000 with 4 KiB names; measured: 520,000 short
 * members peak at 271 MB RSS, too close to 300); a real rootfs is 30,000 to 100,000 members,
 * ~8-25 MiB by this count. Past it the image is refused, whatever
 * `image_max_members` says: peak RSS of the import stays under 300 MB (issue 13).
 */
export const MAX_NAME_TOTAL = 96 * 1024 ** 2;
export const MEMBER_OVERHEAD = 200;

/** The image was refused: the message is final (it names the file and, when known, the member). */
export class ImageRefusedError extends ArchiveError {}

export interface InspectOptions {
  /** How the image is named in messages (a path relative to the published tree). */
  file: string;
  limits: ImageLimits;
}

/** A name as shown in a one-line message: control characters escaped, long names cut. */
export function shownName(name: string): string {
  const safe = name.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return safe.length > 200 ? `${safe.slice(0, 200)}…` : safe;
}

export class TarInspector {
  /** Uncompressed tar bytes read so far. */
  expanded = 0;
  /** Compressed bytes the caller has fed to the decompressor so far (0: not compressed). */
  compressed = 0;
  members = 0;
  private nameBytes = 0;
  private current: string | undefined;

  constructor(private readonly opts: InspectOptions) {}

  refusal(reason: string, member = this.current): ImageRefusedError {
    const who = member === undefined ? "" : `member '${shownName(member)}': `;
    return new ImageRefusedError(`Cannot publish image '${this.opts.file}': ${who}${reason}`);
  }

  /** Counts expanded bytes and stops a bomb as soon as a limit is passed. */
  private async *counted(input: TarInput): AsyncGenerator<Buffer | string> {
    const { max_bytes, max_ratio } = this.opts.limits;
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      this.expanded += chunk.length;
      if (this.expanded > max_bytes) throw this.refusal(`it expands to more than ${max_bytes} bytes (image_max_bytes)`);
      if (this.expanded > RATIO_GRACE_BYTES && this.compressed > 0 && this.expanded > max_ratio * this.compressed) {
        throw this.refusal(
          `it expands more than ${max_ratio} times (${this.expanded} bytes from ${this.compressed} compressed; image_max_ratio)`,
        );
      }
      yield chunk;
    }
  }

  /**
   * The members of `input`, each yielded only after it passed every rule and limit (its
   * body is then the caller's to read). With `cat`, hard-link targets are looked up in it
   * (the caller adds each member before asking for the next); without, the inspector keeps
   * the member paths itself (bounded by MAX_NAME_TOTAL like the catalogue).
   */
  async *entries(input: TarInput, cat?: Catalogue): AsyncGenerator<TarEntry> {
    const { max_members, allow_devices } = this.opts.limits;
    const seen = cat ? undefined : new Set<string>();
    // Hard-link targets are archive paths as written: "./a" and "a" name the same member.
    const isEarlierMember = cat ? (p: string) => cat.has(p) || cat.has(`./${p}`) : (p: string) => seen!.has(p);
    const rules = new MemberRules({ allowDevices: allow_devices, isEarlierMember });
    try {
      for await (const entry of readTar(this.counted(input))) {
        const { header } = entry;
        this.current = header.name;
        if (++this.members > max_members) throw this.refusal(`more than ${max_members} members (image_max_members)`);
        this.nameBytes +=
          MEMBER_OVERHEAD + Buffer.byteLength(header.name) + (header.linkname === undefined ? 0 : Buffer.byteLength(header.linkname));
        if (this.nameBytes > MAX_NAME_TOTAL)
          throw this.refusal(`its ${this.members} member names and entries need more than ${MAX_NAME_TOTAL >> 20} MiB of catalogue`);
        const problem = rules.check(header);
        if (problem !== undefined) throw this.refusal(problem);
        seen?.add(normaliseMemberPath(header.name).path!);
        yield entry;
      }
    } catch (err) {
      throw this.translate(err);
    }
    if (this.members === 0) throw this.refusal("it is an empty tar archive (no members)");
  }

  /** Reads the whole tar stream; resolves to its catalogue (implicit parents added) or rejects. */
  async run(input: TarInput): Promise<Catalogue> {
    const cat = new Catalogue();
    for await (const { header, body } of this.entries(input, cat)) {
      if (header.type === "file") {
        const hash = createHash("sha256");
        try {
          for await (const chunk of body) hash.update(chunk as Buffer);
        } catch (err) {
          throw this.translate(err);
        }
        cat.add(header, hash.digest());
      } else cat.add(header);
    }
    cat.addImplicitParents();
    return cat;
  }

  /** Reader and decompressor errors as refusals naming the file (and member when known). */
  private translate(err: unknown): unknown {
    if (err instanceof ImageRefusedError) return err;
    if (err instanceof TarMemberError) return this.refusal(err.reason, err.member);
    const msg = errorMessage(err).replace(/^Cannot read tar archive: /, "");
    const after = this.current === undefined ? "" : `, after member '${shownName(this.current)}'`;
    // A header that does not parse: at byte 0 (random bytes, another format) or later.
    const bad = /^bad header checksum at byte (\d+)/.exec(msg) ?? /^Cannot read tar header: (bad \w+ field)/.exec(msg);
    if (bad) {
      const what = bad[0].startsWith("bad header") ? `bad header checksum at byte ${bad[1]}` : `${bad[1]} in a header`;
      return this.refusal(`it is not a tar archive (${what}${after})`, undefined);
    }
    return new ImageRefusedError(`Cannot publish image '${this.opts.file}': ${msg}${after}`, "Exception", { cause: err });
  }
}
