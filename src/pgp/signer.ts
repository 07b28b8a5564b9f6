/**
 * What the rest of the server needs from OpenPGP: detached, ASCII-armoured signatures made
 * by the *primary* key of one of the five signing keys (server-reference §1.4). The client
 * rejects subkey signatures (client-protocol §4.3), so no implementation may use a subkey.
 */
import type { Readable } from "node:stream";

export type KeyName = "archive-master" | "image-master" | "image-signing" | "device-signing" | "blacklist";

export const KEY_NAMES: readonly KeyName[] = ["archive-master", "image-master", "image-signing", "device-signing", "blacklist"];

/** Hash-as-you-go signing: feed the bytes while they are written, then ask for the signature. */
export interface StreamSignature {
  update(chunk: Uint8Array): void;
  /** The armoured detached signature over every byte passed to update(). */
  finish(): Promise<string>;
}

export interface Signer {
  /** Starts a signature by `key`; memory stays flat whatever the size of the data. */
  begin(key: KeyName): Promise<StreamSignature>;
  /**
   * Signs the file at `path`, writing `dest` (default `path + ".asc"`) by atomic rename,
   * so a reader sees the old signature or the new one, never a partial file.
   */
  signFile(key: KeyName, path: string, dest?: string): Promise<void>;
  /** Signs a stream's bytes and returns the armoured signature. */
  signStream(key: KeyName, data: Readable): Promise<string>;
}
