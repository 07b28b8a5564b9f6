/**
 * The tree's files against what vouches for them: every `.asc` checked with the keys that
 * must have made it (image-signing, or the device keyring of a device whose index lists the
 * file), and every listed file's sha256 and size compared with its index entries.
 */
import { join } from "node:path";
import type { Reporter } from "./report.js";
import { anyOf, isFile, type SignatureChecker, type Trust } from "./signatures.js";

/** A file named by one or more trusted indexes. */
export interface FileRef {
  entries: { index: string; checksum: string; size: number }[];
  /** Who may sign it, per listing index (image-signing or that device's keyring). */
  trusts: (Trust | null)[];
}

/** Absolute path of a host-absolute URL path in the tree; null for absolute http(s) URLs. */
export const local = (root: string, url: string): string | null => (/^https?:\/\//.test(url) ? null : join(root, url.slice(1)));

/** Keys for a file: those of the indexes listing it (its sidecar's for a `.json`), else image-signing. */
function trustFor(data: string, refs: Map<string, FileRef>, imageSigning: Trust | null, blacklist: ReadonlySet<string>): Trust | null {
  const ref = refs.get(data) ?? (data.endsWith(".json") ? refs.get(`${data.slice(0, -".json".length)}.tar.xz`) : undefined);
  return ref ? anyOf(ref.trusts, blacklist) : imageSigning;
}

export async function sweepSignatures(
  c: { rep: Reporter; sigs: SignatureChecker },
  files: Iterable<string>,
  refs: Map<string, FileRef>,
  chain: { imageSigning: Trust | null; blacklist: ReadonlySet<string>; handled: ReadonlySet<string> },
): Promise<void> {
  const ascs = [...files].filter((f) => f.endsWith(".asc") && !chain.handled.has(f)).sort();
  for (const asc of ascs) {
    const data = asc.slice(0, -".asc".length);
    if (!(await isFile(data))) {
      // A listed file that is missing was reported under its own name already.
      if (!refs.has(data)) c.rep.error(asc, `signs ${c.rep.name(data)}, which does not exist`);
      continue;
    }
    await c.sigs.check(data, asc, trustFor(data, refs, chain.imageSigning, chain.blacklist));
  }
}

export async function checkDigests(c: { rep: Reporter; sigs: SignatureChecker }, refs: Map<string, FileRef>): Promise<void> {
  for (const [file, ref] of [...refs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!(await isFile(file))) continue;
    c.rep.checked.files++;
    const d = await c.sigs.digest(file);
    for (const e of ref.entries) {
      const index = c.rep.name(e.index);
      if (d.sha256 !== e.checksum) {
        c.rep.error(file, `sha256 ${d.sha256} differs from the checksum ${e.checksum} in ${index}: devices reject it (HASH ERROR)`);
      }
      if (d.size !== e.size) c.rep.error(file, `is ${d.size} bytes, ${index} says ${e.size} (upgrade paths are scored by size)`);
    }
  }
}
