/**
 * A mirror's documents, judged by the local verifier's own checks: each small file a device
 * fetches (keyrings, channels.json, device keyrings, index.json, their `.asc`) is copied, in
 * the device's order (client-protocol §3), into a scratch directory laid out like the tree,
 * and the checks of trust.ts, signatures.ts and documents.ts run on that copy. Only the
 * listed image files stay remote (remote-files.ts): they can be gigabytes.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ChannelsDoc } from "../model/channels.js";
import { checkChannels, checkIndex, type Finding } from "./documents.js";
import { MAX_SIGNATURE, type RemoteRef } from "./remote-files.js";
import { RemoteHttpError, type RemoteSource } from "./remote-http.js";
import { parseGeneratedAt } from "./remote-lag.js";
import { anyOf, isFile, type Trust } from "./signatures.js";
import { checkDeviceKeyrings, type Chain, type KeyringCheck } from "./trust.js";

/** Documents and keyrings are small; a hostile server must not make us hold more. */
export const MAX_DOCUMENT = 16 << 20;

/** The scratch copy of a mirror's documents. */
export class MirrorCopy {
  /** Scratch paths whose fetch failed for another reason than 404 (already reported). */
  readonly failed = new Set<string>();

  constructor(
    readonly src: RemoteSource,
    readonly root: string,
    private readonly c: KeyringCheck,
  ) {}

  /** Scratch path of a host-absolute path. */
  at(path: string): string {
    return join(this.root, path.replace(/^\/+/, ""));
  }

  /**
   * HEAD then GET, like the client (client-protocol §2), into the scratch copy. False when
   * absent (404: the checks that need it say "missing") or not fetchable (reported here).
   */
  async fetch(path: string): Promise<boolean> {
    const file = this.at(path);
    const cap = path.endsWith(".asc") ? MAX_SIGNATURE : MAX_DOCUMENT;
    let head: number | null;
    try {
      head = await this.src.head(path);
    } catch (err) {
      return this.failure(file, err, "HEAD");
    }
    let body: Buffer;
    try {
      body = await this.src.get(path, cap);
    } catch (err) {
      return this.failure(file, err, "GET");
    }
    if (head !== null && head !== body.length)
      this.c.rep.warning(file, `HEAD says ${head} bytes, GET sent ${body.length} (a stale cache in front of the mirror?)`);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, body);
    return true;
  }

  private failure(file: string, err: unknown, method: string): false {
    const e = err instanceof RemoteHttpError ? err : new RemoteHttpError(file, (err as Error).message);
    if (e.status === 404 || e.status === 410) {
      // The client HEADs first: a server that only fails HEAD fails devices all the same.
      if (method === "GET") this.c.rep.error(file, `answers HEAD but not GET (${e.why})`);
      return false;
    }
    this.failed.add(file);
    const hint = method === "HEAD" && (e.status === 405 || e.status === 501) ? ": devices HEAD every URL first and stop there" : "";
    this.c.rep.error(file, `${method} failed (${e.why})${hint}`);
    return false;
  }
}

export interface RemoteDocs {
  channels?: ChannelsDoc;
  channelsBytes?: Buffer;
  /** `global.generated_at` (seconds) of the index each "channel/device" is given. */
  times: Map<string, number | null>;
  /** Files the trusted indexes list, by host-absolute path. */
  refs: Map<string, RemoteRef>;
  skipped: string[];
}

function report(c: KeyringCheck, file: string, findings: Finding[]): void {
  for (const f of findings) (f.error ? c.rep.error.bind(c.rep) : c.rep.warning.bind(c.rep))(file, f.message);
}

/** A document and its `.asc` (already fetched): the signature by `trust`; false = bad or missing. */
async function signature(c: KeyringCheck, m: MirrorCopy, path: string, trust: Trust | null): Promise<boolean | null> {
  const file = m.at(path);
  const asc = `${file}.asc`;
  if (!(await isFile(asc))) {
    if (!m.failed.has(asc)) c.rep.error(asc, `missing: the signature of ${c.rep.name(file)} (devices stop with FileNotFoundError)`);
    return false;
  }
  return c.sigs.check(file, asc, trust);
}

const isRemote = (p: string) => /^https?:\/\//.test(p);

async function checkIndexFile(c: KeyringCheck, m: MirrorCopy, path: string, trust: Trust | null, docs: RemoteDocs): Promise<unknown> {
  const file = m.at(path);
  if (!(await m.fetch(path))) {
    if (!m.failed.has(file)) c.rep.error(file, "missing: named by channels.json");
    return undefined;
  }
  await m.fetch(`${path}.asc`);
  c.rep.checked.indexes++;
  const sig = await signature(c, m, path, trust);
  const { doc, findings } = checkIndex(await readFile(file, "utf8"));
  report(c, file, findings);
  if (sig === false || !doc) {
    docs.skipped.push(`${c.rep.name(file)} is not trusted: the files it lists were not checked`);
    return undefined;
  }
  // Installers read the conventional index.json, devices the copy channels.json names
  // (client-protocol §10.1; src/tree/versioned-index.ts): the mirror must hold both alike.
  const conventional = `${path.slice(0, path.lastIndexOf("/"))}/index.json`;
  if (conventional !== path && (await m.fetch(conventional))) {
    await m.fetch(`${conventional}.asc`);
    await signature(c, m, conventional, trust);
    const [a, b] = await Promise.all([readFile(file), readFile(m.at(conventional))]);
    if (!a.equals(b))
      c.rep.warning(
        m.at(conventional),
        `differs from ${c.rep.name(file)}, which channels.json names: installers and devices see different images`,
      );
  }
  for (const f of doc.images.flatMap((img) => img.files)) {
    if (isRemote(f.path)) {
      docs.skipped.push(`${f.path} (listed by ${c.rep.name(file)}) is on another host`);
      continue;
    }
    const ref = docs.refs.get(f.path) ?? { entries: [], trusts: [] };
    ref.entries.push({ index: c.rep.name(file), checksum: f.checksum, size: f.size, signature: f.signature });
    ref.trusts.push(trust);
    docs.refs.set(f.path, ref);
  }
  return doc.global.generated_at;
}

/** channels.json, device keyrings and indexes of the mirror, in the client's order. */
export async function checkRemoteDocuments(c: KeyringCheck, m: MirrorCopy, chain: Chain): Promise<RemoteDocs> {
  const docs: RemoteDocs = { times: new Map(), refs: new Map(), skipped: [] };
  const file = m.at("/channels.json");
  if (!(await m.fetch("/channels.json"))) {
    if (!m.failed.has(file)) c.rep.error(file, "missing: devices cannot find any channel");
    return docs;
  }
  await m.fetch("/channels.json.asc");
  docs.channelsBytes = await readFile(file);
  const sig = await signature(c, m, "/channels.json", chain.imageSigning);
  const { doc, findings } = checkChannels(docs.channelsBytes.toString("utf8"));
  report(c, file, findings);
  if (sig === false || !doc) {
    docs.skipped.push("channels.json is not trusted: device keyrings, indexes and image files were not checked");
    return docs;
  }
  docs.channels = doc;
  const entries = Object.entries(doc).flatMap(([ch, e]) => Object.entries(e.devices).map(([dev, d]) => ({ ch, dev, d })));
  for (const { d } of entries) {
    if (d.keyring && !isRemote(d.keyring.path) && !isRemote(d.keyring.signature)) {
      await m.fetch(d.keyring.path);
      await m.fetch(d.keyring.signature);
    }
  }
  const deviceTrust = await checkDeviceKeyrings(c, m.root, doc, chain);
  const byIndex = new Map<string, { keys: string[]; trusts: (Trust | null)[] }>();
  for (const { ch, dev, d } of entries) {
    if (isRemote(d.index)) {
      docs.skipped.push(`${ch}/${dev}: index ${d.index} is on another host`);
      continue;
    }
    const t = deviceTrust.get(`${ch}\n${dev}`);
    const e = byIndex.get(d.index) ?? { keys: [], trusts: [] };
    e.keys.push(`${ch}/${dev}`);
    if (t !== undefined) e.trusts.push(t);
    byIndex.set(d.index, e);
  }
  for (const [path, e] of byIndex) {
    const generatedAt = await checkIndexFile(c, m, path, anyOf([chain.imageSigning, ...e.trusts], chain.blacklist), docs);
    for (const key of e.keys) docs.times.set(key, parseGeneratedAt(generatedAt));
  }
  return docs;
}
