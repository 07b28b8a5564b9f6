/**
 * CDN purge (issue 16): after phase 5, `purge_command` (argv, split on whitespace by the
 * config) runs once with the URLs of the changed mutable documents appended — channels.json,
 * index.json, gpg/ keyrings and their .asc (plan.ts isMutableDocument); pool files, version
 * tarballs and index copies get new names instead, nothing to purge. Bounded in time; its
 * failure is logged, not fatal: the mirror itself is complete, a CDN serves the old documents
 * only until they expire (their Cache-Control is short, src/server/content-rules.ts).
 */
import { errorMessage } from "../errors.js";
import type { Logger } from "../io/log.js";
import type { MirrorConfig } from "../config/types.js";
import { runTool } from "./transport.js";

/** Longest a purge may take (also bounded by the push's own time limit). */
export const PURGE_TIMEOUT_MS = 60_000;

/** `url` + path for each document; without `url`, the path as an absolute URL path. */
export function purgeUrls(m: Pick<MirrorConfig, "url">, paths: string[]): string[] {
  return paths.map((p) => (m.url ? `${m.url}${p.split("/").map(encodeURIComponent).join("/")}` : `/${p}`));
}

/** Runs purge_command with `urls`; never throws. Returns whether it succeeded. */
export async function runPurge(
  m: Pick<MirrorConfig, "name" | "purge_command">,
  urls: string[],
  opts: { timeoutMs: number; signal?: AbortSignal; log?: Logger },
): Promise<boolean> {
  if (!m.purge_command || m.purge_command.length === 0 || urls.length === 0) return true;
  const limit = Math.min(opts.timeoutMs, PURGE_TIMEOUT_MS);
  const signals = [AbortSignal.timeout(limit), ...(opts.signal ? [opts.signal] : [])];
  const t0 = performance.now();
  try {
    await runTool([...m.purge_command, ...urls], { signal: AbortSignal.any(signals) });
    opts.log?.info(`mirror ${m.name}: purge_command ran for ${urls.length} document(s)`, {
      mirror: m.name,
      phase: "purge",
      files: urls.length,
      duration_ms: Math.round(performance.now() - t0),
    });
    return true;
  } catch (err) {
    const why = err instanceof Error && err.name === "TimeoutError" ? `stopped after ${limit / 1000} s` : errorMessage(err);
    opts.log?.warn(`mirror ${m.name}: purge_command failed (the mirror is complete; cached documents stay until they expire): ${why}`, {
      mirror: m.name,
      phase: "purge",
      duration_ms: Math.round(performance.now() - t0),
    });
    return false;
  }
}
