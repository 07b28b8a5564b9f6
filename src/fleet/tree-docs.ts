/**
 * Reads the published documents an attribution is built from (attribution.ts): channels.json
 * and the index each owner's entry names. Synchronous and small (the serving process calls it
 * on a change); a document that cannot be read leaves its owner without images rather than
 * failing: counting must never stop serving.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseChannels, type ChannelsDoc } from "../model/channels.js";
import { parseIndex, type IndexDoc } from "../model/index-doc.js";
import { buildAttribution, ownerKey, ownersOf, type Attribution, type TreeDocs } from "./attribution.js";

/** The documents, and `problems` naming what could not be read. */
export function readTreeDocs(publishPath: string): TreeDocs & { problems: string[] } {
  const problems: string[] = [];
  let channels: ChannelsDoc = {};
  const file = join(publishPath, "channels.json");
  try {
    channels = parseChannels(readFileSync(file, "utf8"), file);
  } catch (err) {
    problems.push(`Cannot read ${file}: ${(err as Error).message}`);
  }
  const indexes = new Map<string, IndexDoc>();
  for (const o of ownersOf(channels)) {
    const path = join(publishPath, ...o.index.split("/").filter((s) => s !== "" && s !== ".."));
    try {
      indexes.set(ownerKey(o.channel, o.device), parseIndex(readFileSync(path, "utf8"), path));
    } catch (err) {
      problems.push(`Cannot read the index of ${o.channel}/${o.device}: ${(err as Error).message}`);
    }
  }
  return { channels, indexes, problems };
}

export function readAttribution(publishPath: string): Attribution {
  return buildAttribution(readTreeDocs(publishPath));
}

/**
 * What changes when any document changes: channels.json's identity (every commit rewrites it,
 * since it names the content-named index copy: src/tree/versioned-index.ts) and the indexes'.
 */
export function docsSignature(publishPath: string, attr: Attribution): string {
  const parts: string[] = [];
  const id = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    parts.push(st ? `${st.ino}:${st.size}:${st.mtimeMs}` : "-");
  };
  id(join(publishPath, "channels.json"));
  for (const dir of attr.pollDirs.keys()) id(join(publishPath, ...dir.split("/").filter((s) => s !== "" && s !== ".."), "index.json"));
  return parts.join(",");
}
