/**
 * One Tree/Device operation = one transaction: load the documents it needs once, let the
 * operation change working copies (validation first, so a refused call changes nothing),
 * then commit everything together (see commit.ts for the order), or nothing at all.
 *
 * Unlike the reference's per-document helper (§2.4, §13 #16, #22), a failure anywhere in a
 * multi-step operation (rename_channel, sync_alias, create_device + alias/redirect syncs,
 * ...) leaves every file as it was: new directories and staged files are removed again.
 */
import { mkdir, rename, rm, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Config } from "../config/types.js";
import { dumpPyJson } from "../format/pyjson.js";
import type { XzCodec } from "../io/xz.js";
import type { Clock } from "../model/generated-at.js";
import { parseChannels, type ChannelsDoc } from "../model/channels.js";
import { canonical, cleanupPhased, parseIndex, serializeIndex, type IndexDoc } from "../model/index-doc.js";
import type { Signer } from "../pgp/signer.js";
import { discardPair, fsyncDir, installPair, prepareSigned, readTextOrNull, type PreparedPair } from "./commit.js";
import { mirrorDir, removeDirExcept } from "./dirs.js";
import { lexists } from "./paths.js";
import { markSuperseded, pointEntriesAt, treeUrl, versionedIndexName } from "./versioned-index.js";

export interface TreeContext {
  config: Config;
  /** Root of the tree (publish_path unless the Tree was opened on another path). */
  root: string;
  signer: Signer;
  clock: Clock;
  codec: XzCodec;
}

interface IndexSlot {
  doc: IndexDoc;
  /** Canonical content as loaded, before the phased clean-up (§2.4 step 2). */
  orig: string;
  existed: boolean;
  write: boolean;
  /** The file's text as loaded (null: no file). */
  text: string | null;
  /** Only make channels.json name a copy of the file as it is (versioned-index.ts). */
  repoint: boolean;
}

/** A signed file written to temporaries, renamed into place before any document. */
export interface StagedFile {
  path: string;
  tmp: string;
  sigTmp: string;
  sha256: string;
  size: number;
}

export class Txn {
  /** Aliases being synced (guards alias cycles against endless recursion). */
  readonly syncing = new Set<string>();
  private chan?: { doc: ChannelsDoc; orig: string; existed: boolean; write: boolean; force: boolean };
  private readonly idx = new Map<string, IndexSlot>();
  private readonly staged = new Map<string, StagedFile>();
  private readonly created: string[] = [];
  private readonly removals: Array<{ dir: string; keep: Set<string> }> = [];
  private installing = false;

  constructor(readonly ctx: TreeContext) {}

  get channelsPath(): string {
    return join(this.ctx.root, "channels.json");
  }

  /** The working channels.json; `write` marks it for commit (written if changed or missing). */
  async channels(write = false): Promise<ChannelsDoc> {
    if (!this.chan) {
      const text = await readTextOrNull(this.channelsPath);
      const doc = parseChannels(text ?? "", this.channelsPath);
      this.chan = { doc: structuredClone(doc), orig: canonical(doc), existed: text !== null, write: false, force: false };
    }
    if (write) this.chan.write = true;
    return this.chan.doc;
  }

  /** An empty channels.json that is written whatever it ends up holding (generate_index). */
  resetChannels(): ChannelsDoc {
    this.chan = { doc: {}, orig: "", existed: false, write: true, force: true };
    return this.chan.doc;
  }

  /**
   * The working copy of the index at `path` (phased clean-up applied). `write` marks it for
   * commit: written if its content changed or the file is missing. `from` loads it from
   * another file (a rename's old location).
   */
  async index(path: string, opts: { write?: boolean; from?: string; repoint?: boolean } = {}): Promise<IndexDoc> {
    let slot = this.idx.get(path);
    if (!slot) {
      const src = opts.from ?? path;
      const text = await readTextOrNull(src);
      const raw = parseIndex(text ?? "", src);
      const doc = structuredClone(raw);
      cleanupPhased(doc);
      const existed = opts.from ? lexists(path) : text !== null;
      slot = { doc, orig: canonical(raw), existed, write: false, text, repoint: false };
      this.idx.set(path, slot);
    }
    if (opts.write) slot.write = true;
    if (opts.repoint) slot.repoint = true;
    return slot.doc;
  }

  /** mkdir -p, remembering what it created so an abort can take it back. */
  async mkdirp(dir: string): Promise<void> {
    const missing: string[] = [];
    for (let p = dir; !lexists(p); p = dirname(p)) missing.unshift(p);
    for (const m of missing) {
      await mkdir(m);
      this.created.push(m);
    }
  }

  /** Hard-link copy of a directory (rename_channel); the original goes after the commit. */
  async mirror(src: string, dest: string, skip: ReadonlySet<string>): Promise<void> {
    await this.mkdirp(dirname(dest));
    this.created.push(dest);
    await mirrorDir(src, dest, skip);
  }

  stage(file: StagedFile): void {
    this.staged.set(file.path, file);
  }

  stagedFile(path: string): StagedFile | undefined {
    return this.staged.get(path);
  }

  /** Deleted once the new documents are in place (never before: readers still use it). */
  removeAfterCommit(dir: string, keep: Set<string> = new Set()): void {
    this.removals.push({ dir, keep });
  }

  /**
   * Prepares every changed document, then installs files, content-named index copies,
   * indexes, channels.json, in that order (versioned-index.ts).
   */
  async commit(): Promise<void> {
    const prepared: PreparedPair[] = [];
    const copies: PreparedPair[] = [];
    const superseded = new Set<string>();
    const { signer, root, config } = this.ctx;
    try {
      const now = this.ctx.clock();
      for (const [path, s] of this.idx) {
        if (!s.write && !s.repoint) continue;
        // What the index will hold: the file as it is, unless this transaction changes it.
        let bytes = s.existed && s.text !== null ? Buffer.from(s.text, "utf8") : null;
        if (s.write) {
          cleanupPhased(s.doc);
          // generated_at changes only with the content (§2.3, §13 #18).
          if (!s.existed || canonical(s.doc) !== s.orig) {
            bytes = Buffer.from(serializeIndex(s.doc, now), "utf8");
            prepared.push(await prepareSigned(path, bytes, signer));
          }
        }
        // Even an unchanged index gets its copy named: a commit killed between index.json and
        // channels.json left channels.json naming the previous copy (healed here).
        if (bytes === null || config.versioned_index === false) continue;
        const copy = join(dirname(path), versionedIndexName(bytes));
        if (!lexists(copy)) copies.push(await prepareSigned(copy, bytes, signer));
        for (const old of pointEntriesAt(await this.channels(true), root, dirname(path), treeUrl(root, copy))) superseded.add(old);
      }
      const c = this.chan;
      if (c?.write && (c.force || !c.existed || canonical(c.doc) !== c.orig)) {
        prepared.push(await prepareSigned(this.channelsPath, dumpPyJson(c.doc), signer));
      }
    } catch (err) {
      await Promise.all([...copies, ...prepared].map(discardPair));
      await this.abort();
      throw err;
    }
    this.installing = true;
    const dirs = new Set<string>();
    for (const f of this.staged.values()) {
      await rename(f.tmp, f.path);
      await rename(f.sigTmp, `${f.path}.asc`);
      dirs.add(dirname(f.path));
    }
    // A copy is a new name: signature first, so nobody gets the document without it.
    for (const p of copies) {
      await rename(p.sigTmp, `${p.final}.asc`);
      await rename(p.tmp, p.final);
      dirs.add(dirname(p.final));
    }
    for (const p of prepared) {
      // Just before channels.json stops naming them: the copies' retention starts now.
      if (p.final === this.channelsPath) await markSuperseded(root, superseded);
      await installPair(p);
      dirs.add(dirname(p.final));
    }
    for (const d of dirs) await fsyncDir(d);
    for (const r of this.removals) await removeDirExcept(r.dir, r.keep);
  }

  /** Takes back staged files and created directories; a no-op once installing began. */
  async abort(): Promise<void> {
    if (this.installing) return;
    this.installing = true;
    for (const f of this.staged.values()) {
      await unlink(f.tmp).catch(() => {});
      await unlink(f.sigTmp).catch(() => {});
    }
    for (const d of [...this.created].reverse()) await rm(d, { recursive: true, force: true });
  }
}

/** Runs `fn` in a fresh transaction and commits it; nothing is written if `fn` throws. */
export async function runTxn<T>(ctx: TreeContext, fn: (t: Txn) => Promise<T>): Promise<T> {
  const t = new Txn(ctx);
  let result: T;
  try {
    result = await fn(t);
  } catch (err) {
    await t.abort();
    throw err;
  }
  await t.commit();
  return result;
}
