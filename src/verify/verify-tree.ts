/**
 * `verifyTree`: checks a published tree the way devices will consume it, before they do.
 *   1. the keyring chain in gpg/, from our own archive-master (the devices' preinstalled root);
 *   2. channels.json, each device keyring, each index.json: signature and shape;
 *   3. every .asc of the tree against the key that must have made it;
 *   4. every file an index names: present, sha256 and size as listed;
 *   5. orphans (warnings) and missing files (errors), like Tree.listOrphanedFiles/listMissingFiles;
 *   6. files imported from an upstream without verify= (warnings: upstreams.ts).
 * A document whose signature fails is not trusted: what it lists is not checked further (and
 * the orphan check is skipped), so one damaged file is reported once, under its own name.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Config } from "../config/types.js";
import { TreeError } from "../errors.js";
import type { ChannelsDoc } from "../model/channels.js";
import type { IndexDoc } from "../model/index-doc.js";
import { orphanedFiles, referencedFiles } from "../model/orphans.js";
import { retainedIndexCopies } from "../tree/versioned-index.js";
import { listExisting } from "../tree/files.js";
import { deviceDirOf, isDir } from "../tree/paths.js";
import { checkChannels, checkIndex, type Finding } from "./documents.js";
import { Reporter, type TreeReport } from "./report.js";
import { SignatureChecker, anyOf, isFile, type Trust } from "./signatures.js";
import { checkDigests, local, sweepSignatures, type FileRef } from "./tree-files.js";
import { checkDeviceKeyrings, loadChain, type Chain, type KeyringCheck } from "./trust.js";
import { warnUnverifiedUpstreams } from "./upstreams.js";

export interface VerifyTreeOptions {
  /** Warn when a keyring expires within this many days (default 30). */
  warnDays?: number;
  now?: Date;
  /** Tree to check (default: config.publish_path). */
  root?: string;
}

function report(rep: Reporter, file: string, findings: Finding[]): void {
  for (const f of findings) (f.error ? rep.error.bind(rep) : rep.warning.bind(rep))(file, f.message);
}

/** Signature of a document that must exist; false = present but bad, or missing. */
async function checkDocument(c: KeyringCheck, file: string, trust: Trust | null, handled: Set<string>): Promise<boolean | null> {
  const asc = `${file}.asc`;
  handled.add(asc);
  if (!(await isFile(asc))) {
    c.rep.error(asc, `missing: the signature of ${c.rep.name(file)} (devices stop with FileNotFoundError)`);
    return false;
  }
  return c.sigs.check(file, asc, trust);
}

interface Documents {
  /** Trusted channels.json (signature good or not checkable), else undefined. */
  channels?: ChannelsDoc;
  /** Trusted indexes by file. */
  indexes: Map<string, IndexDoc>;
  /** Files the trusted indexes list. */
  refs: Map<string, FileRef>;
  /** False when an untrusted or malformed document makes the orphan list unreliable. */
  orphansKnown: boolean;
}

async function checkChannelsFile(c: KeyringCheck, root: string, chain: Chain, docs: Documents, skipped: string[]): Promise<void> {
  const file = join(root, "channels.json");
  if (!(await isFile(file))) {
    c.rep.error(file, "missing: devices cannot find any channel");
    return;
  }
  const sig = await checkDocument(c, file, chain.imageSigning, chain.handled);
  const { doc, findings } = checkChannels(await readFile(file, "utf8"));
  report(c.rep, file, findings);
  // Entries dropped as malformed would make their files look orphaned.
  if (findings.some((f) => f.error)) docs.orphansKnown = false;
  if (sig !== false && doc) docs.channels = doc;
  else skipped.push("channels.json is not trusted: device keyrings, indexes, image files and orphans were not checked");
}

/** Each index once (redirects share one), trusted by image-signing OR its devices' keyrings. */
async function checkIndexes(c: KeyringCheck, root: string, chain: Chain, docs: Documents, skipped: string[]): Promise<void> {
  const channels = docs.channels!;
  const deviceTrust = await checkDeviceKeyrings(c, root, channels, chain);
  const byIndex = new Map<string, Trust[]>();
  for (const [ch, entry] of Object.entries(channels)) {
    for (const [dev, d] of Object.entries(entry.devices)) {
      const file = local(root, d.index);
      if (file === null) {
        skipped.push(`${ch}/${dev}: index ${d.index} is on another host`);
        continue;
      }
      const t = deviceTrust.get(`${ch}\n${dev}`);
      byIndex.set(file, [...(byIndex.get(file) ?? []), ...(t ? [t] : [])]);
    }
  }
  for (const [file, devTrusts] of byIndex) {
    if (!(await isFile(file))) {
      c.rep.error(file, "missing: named by channels.json");
      docs.orphansKnown = false;
      continue;
    }
    c.rep.checked.indexes++;
    const trust = anyOf([chain.imageSigning, ...devTrusts], chain.blacklist);
    const sig = await checkDocument(c, file, trust, chain.handled);
    const { doc, findings } = checkIndex(await readFile(file, "utf8"));
    report(c.rep, file, findings);
    if (findings.some((f) => f.error)) docs.orphansKnown = false;
    if (sig === false || !doc) {
      docs.orphansKnown = false;
      skipped.push(`${c.rep.name(file)} is not trusted: its files and the orphans were not checked`);
      continue;
    }
    docs.indexes.set(file, doc);
    // (Only for a trusted copy: a damaged one is reported once, under its own name.)
    // Installers read the conventional index.json, devices the copy channels.json names:
    // both must hold the same index (src/tree/versioned-index.ts; client-protocol §10.1).
    const conventional = join(dirname(file), "index.json");
    if (file !== conventional && (await isFile(conventional))) {
      const [a, b] = await Promise.all([readFile(file), readFile(conventional)]);
      // A warning: a commit interrupted before its channels.json leaves exactly this, and the
      // next commit of that device puts them level again.
      if (!a.equals(b))
        c.rep.warning(
          conventional,
          `differs from ${c.rep.name(file)}, which channels.json names: installers and devices see different images until the next commit`,
        );
    }
    for (const f of doc.images.flatMap((img) => img.files)) {
      const abs = local(root, f.path);
      if (abs === null) continue;
      const ref = docs.refs.get(abs) ?? { entries: [], trusts: [] };
      ref.entries.push({ index: file, checksum: f.checksum, size: f.size });
      ref.trusts.push(trust);
      docs.refs.set(abs, ref);
      const asc = local(root, f.signature);
      if (!(await isFile(abs))) c.rep.error(abs, `missing: listed by ${c.rep.name(file)}`);
      if (asc && !(await isFile(asc))) c.rep.error(asc, `missing: the signature of ${c.rep.name(abs)}, listed by ${c.rep.name(file)}`);
    }
  }
}

export async function verifyTree(config: Config, opts: VerifyTreeOptions = {}): Promise<TreeReport> {
  const root = opts.root ?? config.publish_path;
  if (!isDir(root)) throw new TreeError(`Cannot verify tree ${root}: not a directory (publish_path in ${config.path})`);
  const now = opts.now ?? new Date();
  const rep = new Reporter(root);
  const c: KeyringCheck = { rep, sigs: new SignatureChecker(rep), now, warnDays: opts.warnDays ?? 30 };
  const skipped: string[] = [];
  const chain = await loadChain(c, root, config.gpg_keyring_path);
  const existing = await listExisting(root);
  const docs: Documents = { indexes: new Map(), refs: new Map(), orphansKnown: true };

  await checkChannelsFile(c, root, chain, docs, skipped);
  if (docs.channels) await checkIndexes(c, root, chain, docs, skipped);
  await sweepSignatures(c, [...existing.files, ...existing.gpgFiles], docs.refs, chain);
  await checkDigests(c, docs.refs);
  await warnUnverifiedUpstreams(rep, docs.refs.keys());

  const channels = docs.channels;
  if (channels && docs.orphansKnown) {
    // The sets Tree.listOrphanedFiles works from, for the documents just checked.
    // Each device directory's index as checked: the copy channels.json names (versioned-index.ts).
    const byDir = new Map<string, IndexDoc>();
    for (const ch of Object.values(channels)) {
      for (const e of Object.values(ch.devices)) {
        const file = local(root, e.index);
        const doc = file === null ? undefined : docs.indexes.get(file);
        if (doc) byDir.set(deviceDirOf(root, e.index), doc);
      }
    }
    const referenced = referencedFiles(
      root,
      channels,
      (ch, d) => deviceDirOf(root, channels[ch].devices[d].index),
      (dir) => byDir.get(dir) ?? docs.indexes.get(join(dir, "index.json")) ?? { global: {}, images: [] },
    );
    // Superseded copies stay RETAIN_MS for devices holding an older channels.json.
    for (const dir of byDir.keys()) {
      for (const copy of await retainedIndexCopies(dir)) referenced.add(copy).add(`${copy}.asc`);
    }
    for (const o of orphanedFiles(existing.files, existing.emptyDirs, referenced)) {
      rep.warning(o, "orphaned: nothing references it ('si cleanup-tree' would delete it)");
    }
  } else if (channels && skipped.length === 0) skipped.push("orphaned files: not listed while a document has errors");
  return rep.report(now, skipped);
}
