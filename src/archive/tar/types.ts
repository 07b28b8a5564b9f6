/**
 * The one description of a tar member used by the reader, the writer, the image diff and the
 * repackers. Names are as in the archive (GNU long names and pax paths merged), directories
 * without their trailing "/" (server-reference §6.1).
 */
export type TarEntryType = "file" | "link" | "symlink" | "directory" | "character-device" | "block-device" | "fifo";

export interface TarHeader {
  /** As in the archive, GNU long names merged; directories WITHOUT trailing "/". */
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch (integer). */
  mtime: number;
  /** Content bytes; 0 for anything but a regular file. */
  size: number;
  /** Hard-link target (an archive path) or symlink target. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /**
   * Raw type character. The reader always sets it; the writer honours it for regular files
   * ("0", "\0" or "7"), where §6.1 says "0" and "\0" differ, and ignores it otherwise.
   */
  typeflag?: string;
}

export interface TarEntry {
  header: TarHeader;
  /** The member's content (empty unless a regular file). Consume or drain it before the next entry. */
  body: import("node:stream").Readable;
}

/** Raw type characters by entry type (what the writer emits; regular files may be "\0" or "7"). */
export const TYPEFLAG: Record<TarEntryType, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  "character-device": "3",
  "block-device": "4",
  directory: "5",
  fifo: "6",
};
