/**
 * `verifyTree`: checks a published tree the way devices will consume it, before they do.
 *   1. the keyring chain in gpg/, from our own archive-master (the devices' preinstalled root);
 *   2. channels.json, each device keyring, each index.json: signature and shape;
 *   3. every .asc of the tree against the key that must have made it;
 *   4. every file an index names: present, sha256 and size as listed;
 *   5. orphans (warnings) and missing files (errors), like Tree.listOrphanedFiles/listMissingFiles.
 * A document whose signature fails is not trusted: what it lists is not checked further (and
 * the orphan check is skipped), so one damaged file is reported once, under its own name.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/types.js";
import type { ChannelsDoc } from "../model/channels.js";
import type { IndexDoc } from "../model/index-doc.js";
import { orphanedFiles, referencedFiles } from "../model/orphans.js";
import { listExisting } from "../tree/files.js";
import { deviceDirOf } from "../tree/paths.js";
import { checkChannels, checkIndex, type Finding } from "./documents.js";
import { Reporter, type TreeReport } from "./report.js";
import { SignatureChecker, anyOf, isFile, type Trust } from "./signatures.js";
import { checkDigests, local, sweepSignatures, type FileRef } from "./tree-files.js";
import { checkDeviceKeyrings, loadChain, type KeyringCheck } from "./trust.js";

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

export async function verifyTree(config: Config, opts: VerifyTreeOptions = {}): Promise<TreeReport> {
  const root = opts.root ?? config.publish_path;
  const now = opts.now ?? new Date();
  const rep = new Reporter(root);
  const c: KeyringCheck = { rep, sigs: new SignatureChecker(rep), now, warnDays: opts.warnDays ?? 30 };
  const skipped: string[] = [];
  const chain = await loadChain(c, root, config.gpg_keyring_path);
  const { handled } = chain;
  const existing = await listExisting(root);

  const channelsFile = join(root, "channels.json");
  let channels: ChannelsDoc | undefined;
  let orphansKnown = true;
  if (!(await isFile(channelsFile))) rep.error(channelsFile, "missing: devices cannot find any channel");
  else {
    const sig = await checkDocument(c, channelsFile, chain.imageSigning, handled);
    const { doc, findings } = checkChannels(await readFile(channelsFile, "utf8"));
    report(rep, channelsFile, findings);
    // Entries dropped as malformed would make their files look orphaned.
    if (findings.some((f) => f.error)) orphansKnown = false;
    if (sig !== false && doc) channels = doc;
    else skipped.push("channels.json is not trusted: device keyrings, indexes, image files and orphans were not checked");
  }

  const refs = new Map<string, FileRef>();
  const indexes = new Map<string, IndexDoc>();
  let allIndexesTrusted = channels !== undefined;
  if (channels) {
    const deviceTrust = await checkDeviceKeyrings(c, root, channels, chain);
    // One index.json may serve several channel entries (redirects): union of their keyrings.
    const byIndex = new Map<string, (Trust | null)[]>();
    for (const [ch, entry] of Object.entries(channels)) {
      for (const [dev, d] of Object.entries(entry.devices)) {
        const file = local(root, d.index);
        if (file === null) {
          skipped.push(`${ch}/${dev}: index ${d.index} is on another host`);
          continue;
        }
        byIndex.set(file, [...(byIndex.get(file) ?? []), deviceTrust.get(`${ch}\n${dev}`) ?? null]);
      }
    }
    for (const [file, devTrusts] of byIndex) {
      const trust = anyOf([chain.imageSigning, ...devTrusts.filter((t) => t !== null)], chain.blacklist);
      if (!(await isFile(file))) {
        rep.error(file, "missing: named by channels.json");
        allIndexesTrusted = false;
        continue;
      }
      rep.checked.indexes++;
      const sig = await checkDocument(c, file, trust, handled);
      const { doc, findings } = checkIndex(await readFile(file, "utf8"));
      report(rep, file, findings);
      if (findings.some((f) => f.error)) orphansKnown = false;
      if (sig === false || !doc) {
        allIndexesTrusted = false;
        skipped.push(`${rep.name(file)} is not trusted: its files and the orphans were not checked`);
        continue;
      }
      indexes.set(file, doc);
      for (const img of doc.images) {
        for (const f of img.files) {
          const abs = local(root, f.path);
          if (abs === null) continue;
          const ref = refs.get(abs) ?? { entries: [], trusts: [] };
          ref.entries.push({ index: file, checksum: f.checksum, size: f.size });
          ref.trusts.push(trust);
          refs.set(abs, ref);
          const asc = local(root, f.signature);
          if (!(await isFile(abs))) rep.error(abs, `missing: listed by ${rep.name(file)}`);
          if (asc && !(await isFile(asc))) rep.error(asc, `missing: the signature of ${rep.name(abs)}, listed by ${rep.name(file)}`);
        }
      }
    }
  }

  await sweepSignatures(c, [...existing.files, ...existing.gpgFiles], refs, chain);
  await checkDigests(c, refs);

  if (channels && allIndexesTrusted && orphansKnown) {
    const doc = channels;
    const referenced = referencedFiles(
      root,
      doc,
      (ch, d) => deviceDirOf(root, doc[ch]!.devices[d]!.index),
      (dir) => indexes.get(join(dir, "index.json")) ?? { global: {}, images: [] },
    );
    for (const o of orphanedFiles(existing.files, existing.emptyDirs, referenced)) {
      rep.warning(o, "orphaned: nothing references it ('si cleanup-tree' would delete it)");
    }
  }
  return rep.report(now, skipped);
}
