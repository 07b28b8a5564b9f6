/**
 * `type = rclone`: one engine for S3, GCS, Azure, B2, R2, WebDAV, SFTP or a plain local
 * directory (`remote = name:bucket/path` or `/srv/mirror`), configured by rclone's own config
 * file (`rclone_config`). One `rclone copy` per phase:
 *
 *  --files-from-raw -   the phase's list on stdin; only those files are looked at
 *  --no-traverse        no listing of the (possibly huge) destination
 *  --ignore-times       plan.ts already chose what changed: a rewritten index.json of the same
 *                       size must be sent even where the remote keeps no modification times
 *  --copy-links         a symlinked file in the tree is uploaded as the file
 *
 * Object stores have no rename, but an object appears under its name only once its upload is
 * complete, so the phase order is what keeps a device from seeing a document before what it
 * names. (rclone before 1.63 writes local and sftp destinations in place: see
 * .notes/readme-mirror.md.) Removals: `rclone delete --files-from-raw -`, which deletes exactly
 * the listed paths (a path already gone is no error).
 */
import type { RcloneMirrorConfig } from "../config/types.js";
import { lastLine, runTool, type Transport } from "./transport.js";

function common(m: RcloneMirrorConfig, connectTimeout: number): string[] {
  return [
    "--files-from-raw",
    "-",
    "--no-traverse",
    ...(m.rclone_config ? ["--config", m.rclone_config] : []),
    "--contimeout",
    `${connectTimeout}s`,
    // Only the final summary line, as JSON: its `stats.bytes` is what the run sent.
    "--use-json-log",
    "--stats-log-level",
    "NOTICE",
    "--stats-one-line",
    "--stats",
    "24h",
  ];
}

export function rclonePushArgv(m: RcloneMirrorConfig, root: string, connectTimeout: number): string[] {
  return ["rclone", "copy", root, m.remote, ...common(m, connectTimeout), "--ignore-times", "--copy-links"];
}

export function rcloneRemoveArgv(m: RcloneMirrorConfig, connectTimeout: number): string[] {
  return ["rclone", "delete", m.remote, ...common(m, connectTimeout)];
}

interface LogLine {
  level?: string;
  msg?: string;
  object?: string;
  stats?: { bytes?: number };
}

function logLines(stderr: string): LogLine[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    });
}

/** Bytes of the run's last stats line. */
export function rcloneBytesSent(stderr: string): number {
  const stats = logLines(stderr).filter((l) => l.stats);
  return stats.at(-1)?.stats?.bytes ?? 0;
}

/** The last error rclone logged, in one line. */
function explain(stderr: string): string {
  const err = logLines(stderr)
    .filter((l) => l.level === "error" || l.level === "critical")
    .at(-1);
  if (err?.msg) return lastLine(`${err.object ? `${err.object}: ` : ""}${err.msg}`);
  return lastLine(stderr.replace(/^\{.*$/gm, ""));
}

export function rcloneTransport(m: RcloneMirrorConfig, opts: { connectTimeout: number }): Transport {
  const list = (files: string[]) => files.map((f) => `${f}\n`).join("");
  return {
    async pushPhase(files, root, signal) {
      const r = await runTool(rclonePushArgv(m, root, opts.connectTimeout), { input: list(files), signal, explain });
      return { bytes: rcloneBytesSent(r.stderr) };
    },
    async remove(files, signal) {
      const r = await runTool(rcloneRemoveArgv(m, opts.connectTimeout), { input: list(files), signal, explain });
      return { bytes: rcloneBytesSent(r.stderr) };
    },
  };
}
