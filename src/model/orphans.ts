/**
 * Missing and orphaned files (server-reference §7.4) from three sets of absolute paths: what
 * exists, which directories are empty, and what the documents reference. Pure set logic;
 * the tree layer walks the disk and reads the documents.
 */
import { compareCodePoints } from "../format/pyjson.js";
import type { ChannelsDoc } from "./channels.js";
import type { IndexDoc } from "./index-doc.js";

const sorted = (s: Iterable<string>) => [...s].sort(compareCodePoints);

/** Referenced files, referenced by the device index at `deviceDir(channel, device)` (§7.4). */
export function referencedFiles(
  root: string,
  channels: ChannelsDoc,
  deviceDir: (channel: string, device: string) => string,
  indexOf: (dir: string) => IndexDoc,
): Set<string> {
  const abs = (url: string) => `${root}/${url.slice(1)}`;
  const out = new Set<string>([`${root}/channels.json`, `${root}/channels.json.asc`]);
  for (const [c, ch] of Object.entries(channels)) {
    for (const [d, e] of Object.entries(ch.devices)) {
      if (e.keyring) {
        out.add(abs(e.keyring.path));
        out.add(abs(e.keyring.signature));
      }
      const dir = deviceDir(c, d);
      out.add(`${dir}/index.json`);
      out.add(`${dir}/index.json.asc`);
      // The content-named copy channels.json points at (src/tree/versioned-index.ts).
      if (e.index.startsWith("/") && !e.index.startsWith("//")) {
        out.add(abs(e.index));
        out.add(`${abs(e.index)}.asc`);
      }
      for (const img of indexOf(dir).images) {
        for (const f of img.files) {
          out.add(abs(f.path));
          out.add(abs(f.signature));
        }
      }
    }
  }
  return out;
}

export function missingFiles(existing: ReadonlySet<string>, referenced: ReadonlySet<string>): string[] {
  return sorted([...referenced].filter((p) => !existing.has(p)));
}

/** Files owned by a pool file `X.tar.xz`: its sidecars (§1.3) and catalogue (issue 19). */
const OWNED_SUFFIXES = [".json", ".json.asc", ".catalogue.gz"];

/**
 * (existing − referenced) ∪ empty directories, minus the files a referenced `X.tar.xz` owns:
 * `X.json`, `X.json.asc` (§1.3) and `X.catalogue.gz` (its catalogue, issue 19), which thus
 * expire with it. Sorted by code point, like Python's sorted().
 */
export function orphanedFiles(existing: ReadonlySet<string>, emptyDirs: ReadonlySet<string>, referenced: ReadonlySet<string>): string[] {
  const out = new Set<string>([...existing].filter((p) => !referenced.has(p)));
  for (const d of emptyDirs) out.add(d);
  for (const p of [...out]) {
    for (const suffix of OWNED_SUFFIXES) {
      if (p.endsWith(suffix) && referenced.has(p.slice(0, -suffix.length) + ".tar.xz")) out.delete(p);
    }
  }
  return sorted(out);
}
