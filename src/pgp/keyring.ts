/**
 * Keyring tarballs (server-reference §3.2, client-protocol §4.2): an xz'd GNU tar with
 * exactly `keyring.json` then `keyring.gpg`, no `./` prefix (cached client runs crash on
 * `./keyring.gpg`), keyring.json in the 4-space layout the recovery greps.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, unlink } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { errorMessage, KeyError_ } from "../errors.js";
import { dumpPyJson } from "../format/pyjson.js";
import { GnuTarWriter, readTar } from "../archive/tar/index.js";
import { defaultCodec } from "../io/xz.js";
import { readPublicKeys, type PublicKeyInfo } from "./keys.js";
import type { KeyName } from "./signer.js";

export interface KeyringMeta {
  type: KeyName;
  /** Unix seconds (UTC); a JSON number, as the client compares it numerically. */
  expiry?: number;
  model?: string;
}

export interface Keyring {
  meta: KeyringMeta;
  keys: PublicKeyInfo[];
  /** Raw keyring.gpg bytes. */
  gpg: Uint8Array;
}

/** keyring.json holds only the truthy fields (§3.2). */
export function keyringJson(meta: KeyringMeta): string {
  const doc: Record<string, string | number> = { type: meta.type };
  if (meta.expiry) doc.expiry = meta.expiry;
  if (meta.model) doc.model = meta.model;
  return dumpPyJson(doc);
}

/** Writes `<dest>` (a .tar.xz) atomically: temp sibling, then rename. */
export async function writeKeyringTarball(
  dest: string,
  meta: KeyringMeta,
  gpg: Uint8Array,
  opts: { now?: Date; xzLevel?: number } = {},
): Promise<void> {
  const mtime = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const tmp = join(dirname(dest), `.${basename(dest)}.tmp-${process.pid}`);
  const xz = defaultCodec().compress({ level: opts.xzLevel ?? 9 });
  const out = createWriteStream(tmp, { mode: 0o644 });
  const done = pipeline(xz, out);
  try {
    const tar = new GnuTarWriter(xz);
    const json = Buffer.from(keyringJson(meta));
    const base = { mode: 0o644, uid: 0, gid: 0, uname: "root", gname: "root", mtime, type: "file" as const };
    await tar.add({ ...base, name: "keyring.json", size: json.length }, json);
    await tar.add({ ...base, name: "keyring.gpg", size: gpg.length }, Buffer.from(gpg));
    await tar.finish();
    xz.end();
    await done;
    await rename(tmp, dest);
  } catch (err) {
    xz.destroy();
    await done.catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Reads a keyring tarball; errors name the file and what is wrong with it. */
export async function readKeyringTarball(path: string, data?: Readable): Promise<Keyring> {
  const members = new Map<string, Buffer>();
  try {
    const xz = defaultCodec().decompress();
    const input = (data ?? createReadStream(path)).pipe(xz);
    for await (const { header, body } of readTar(input)) {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of body) {
        size += (c as Buffer).length;
        // Keyrings are a few KB; refuse anything that would make this a memory bomb.
        if (size > 16 << 20) throw new Error(`member ${header.name} is larger than 16 MiB`);
        chunks.push(c as Buffer);
      }
      members.set(header.name, Buffer.concat(chunks));
    }
  } catch (err) {
    throw new KeyError_(`Cannot read keyring ${path}: ${errorMessage(err)}`);
  }
  const json = members.get("keyring.json");
  const gpg = members.get("keyring.gpg");
  if (!json || !gpg) {
    throw new KeyError_(
      `Cannot read keyring ${path}: it must hold keyring.json and keyring.gpg (has: ${[...members.keys()].join(", ") || "nothing"})`,
    );
  }
  let meta: KeyringMeta;
  try {
    meta = JSON.parse(json.toString("utf8")) as KeyringMeta;
  } catch {
    throw new KeyError_(`Cannot read keyring ${path}: keyring.json is not valid JSON`);
  }
  if (typeof meta.type !== "string") throw new KeyError_(`Cannot read keyring ${path}: keyring.json has no "type"`);
  if (meta.expiry !== undefined && typeof meta.expiry !== "number") {
    throw new KeyError_(`Cannot read keyring ${path}: "expiry" must be a number (the client compares it numerically)`);
  }
  let keys: PublicKeyInfo[];
  try {
    keys = await readPublicKeys(gpg);
  } catch (err) {
    throw new KeyError_(`Cannot read keyring ${path}: keyring.gpg: ${errorMessage(err)}`);
  }
  return { meta, keys, gpg };
}

export async function pipeFile(src: string, dst: NodeJS.WritableStream): Promise<void> {
  const r = createReadStream(src);
  r.pipe(dst, { end: false });
  await once(r, "end");
}
