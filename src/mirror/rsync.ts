/**
 * `type = rsync`: rsync over ssh to `target` (`user@host:/path`), one rsync run per phase.
 *
 *  --files-from=- --from0   the phase's list on stdin (NUL-separated), nothing else is looked at
 *  --delay-updates          each file goes to `.~tmp~/` in its directory first; all are renamed
 *                           into place at the end of the run, so the mirror never serves a
 *                           half-written file and a phase lands as one short rename loop
 *  --ignore-times           plan.ts already chose what changed (a rewritten index.json of the
 *                           same size and second must not be skipped); rsync's delta transfer
 *                           still sends little for a file the mirror has in full
 *  --times, --chmod         the mirror keeps our mtimes (Last-Modified) and is world-readable
 *  --copy-links             a symlinked file in the tree is served as the file
 *  --mkpath                 a fresh target directory is created
 *  -s (protect args)        paths reach the remote rsync as they are, not through its shell
 *  ssh: BatchMode (never a prompt), the configured key, port and known_hosts, StrictHostKeyChecking.
 *
 * Removals run rsync with --delete-missing-args from the local tree, where the listed files no
 * longer exist: the receiver deletes exactly those paths (not the directories they imply, not
 * anything unlisted); one that came back meanwhile is sent instead of deleted.
 */
import type { RsyncMirrorConfig } from "../config/types.js";
import { MirrorFailure } from "../config/mirrors.js";
import { lastLine, runTool, type Transport } from "./transport.js";

/** One argument of rsync's -e string: rsync splits it on spaces and honours quotes, not backslashes. */
function quoteForRsync(arg: string): string {
  if (/^[\w@%+=:,./-]+$/.test(arg)) return arg;
  if (!arg.includes("'")) return `'${arg}'`;
  if (!arg.includes('"')) return `"${arg}"`;
  throw new MirrorFailure(`Cannot use ${JSON.stringify(arg)} in an ssh command for rsync: it has both kinds of quotes`);
}

/** The `-e` command: ssh that never prompts, with the mirror's key, port and known_hosts. */
export function rsyncShell(m: RsyncMirrorConfig, connectTimeout: number): string {
  const argv = ["ssh", "-o", "BatchMode=yes", "-o", `ConnectTimeout=${connectTimeout}`, "-o", "StrictHostKeyChecking=yes"];
  if (m.ssh_key) argv.push("-i", m.ssh_key);
  if (m.ssh_port) argv.push("-p", String(m.ssh_port));
  if (m.ssh_known_hosts) argv.push("-o", `UserKnownHostsFile=${m.ssh_known_hosts}`);
  return argv.map(quoteForRsync).join(" ");
}

/**
 * The end of every invocation: the path list on stdin is relative to `root`; `-s` keeps the
 * remote shell from splitting or globbing the names; `--stats` gives the bytes sent.
 */
function transfer(m: RsyncMirrorConfig, root: string, connectTimeout: number): string[] {
  const target = m.target.endsWith("/") ? m.target : `${m.target}/`;
  return ["-s", "--stats", "-e", rsyncShell(m, connectTimeout), `${root.replace(/\/+$/, "")}/`, target];
}

/** argv of a phase push (the list goes on stdin). */
export function rsyncPushArgv(m: RsyncMirrorConfig, root: string, connectTimeout: number, links = false): string[] {
  return [
    "rsync",
    "--files-from=-",
    "--from0",
    "--delay-updates",
    "--ignore-times",
    "--ignore-missing-args", // a file of the live tree removed by a cleanup since the listing
    "--times",
    "--perms",
    "--chmod=D755,F644",
    // rsync replaces a symlink by creating it under a temporary name and renaming it: atomic.
    links ? "--links" : "--copy-links",
    "--mkpath",
    ...transfer(m, root, connectTimeout),
  ];
}

/** argv of the removal pass: deletes the listed paths that `root` does not have. */
export function rsyncRemoveArgv(m: RsyncMirrorConfig, root: string, connectTimeout: number): string[] {
  return ["rsync", "--files-from=-", "--from0", "--delete-missing-args", ...transfer(m, root, connectTimeout)];
}

/** `Total bytes sent: 1,234` of --stats. */
export function rsyncBytesSent(stdout: string): number {
  const m = /Total bytes sent: ([\d,.]+)/.exec(stdout);
  return m ? Number(m[1].replace(/[,.]/g, "")) : 0;
}

/**
 * Exit 24 ("some files vanished"): a file of the live tree removed by a cleanup during the run
 * (pushes), or the listed paths that are gone locally (removals, which is the point).
 */
const VANISHED = 24;

/** Why rsync failed: ssh's own line (host key, permission) rather than rsync's generic last one. */
function explain(stderr: string): string {
  const lines = stderr.split(/\r?\n/).filter((l) => l.trim() && !/^rsync error: |^rsync: connection unexpectedly closed/.test(l));
  return lastLine(lines.length ? lines.join("\n") : stderr);
}

export function rsyncTransport(m: RsyncMirrorConfig, opts: { connectTimeout: number; liveRoot: string }): Transport {
  const list = (files: string[]) => files.map((f) => `${f}\0`).join("");
  return {
    async pushPhase(files, root, signal, phase) {
      const r = await runTool(rsyncPushArgv(m, root, opts.connectTimeout, phase?.links === true), {
        input: list(files),
        signal,
        explain,
        okCodes: [VANISHED],
      });
      return { bytes: rsyncBytesSent(r.stdout) };
    },
    async remove(files, signal) {
      const r = await runTool(rsyncRemoveArgv(m, opts.liveRoot, opts.connectTimeout), {
        input: list(files),
        signal,
        explain,
        okCodes: [VANISHED],
      });
      return { bytes: rsyncBytesSent(r.stdout) };
    },
  };
}
