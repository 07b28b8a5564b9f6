/**
 * "Unverified upstream" warnings (issue 13): a file an index lists whose sidecar says it was
 * imported by remote-system-image without `verify=` (pool-owner.ts writes `origin.verified`).
 * Its bytes matched the upstream index's checksum, but nothing vouched for that index.
 */
import { readFile } from "node:fs/promises";
import { sidecarPath } from "../model/naming.js";
import type { Reporter } from "./report.js";

export async function warnUnverifiedUpstreams(rep: Reporter, files: Iterable<string>): Promise<void> {
  for (const file of [...files].sort()) {
    if (!file.endsWith(".tar.xz")) continue;
    let origin: unknown;
    try {
      origin = (JSON.parse(await readFile(sidecarPath(file), "utf8")) as { origin?: unknown })?.origin;
    } catch {
      continue; // no sidecar, or not JSON: nothing recorded
    }
    if (typeof origin !== "object" || origin === null) continue;
    const o = origin as Record<string, unknown>;
    if (o.generator !== "remote-system-image" || o.verified !== false) continue;
    rep.warning(
      file,
      `unverified upstream: imported by remote-system-image from ${String(o.url)} for ${String(o.channel)}/${String(o.device)} without verify= (the upstream's signatures were not checked)`,
    );
  }
}
