/**
 * What a push needs of an engine (rsync over ssh, rclone), and how engines are run: argv
 * arrays (no shell), no terminal, each in its own process group so a timeout stops the
 * whole of it (rsync's ssh, rclone's workers), SIGTERM then SIGKILL.
 */
import { spawn } from "node:child_process";
import { MirrorFailure } from "../config/mirrors.js";

export interface PhaseOptions {
  /** Send symlinks as symlinks (the channels-switch phase); otherwise a symlink is sent as its file. */
  links?: boolean;
}

export interface Transport {
  // Function properties, not methods: a wrapper may pass one on unbound.
  /** Copies `files` (relative to `root`) to the mirror; each is in place under its final name only once complete. */
  pushPhase: (files: string[], root: string, signal?: AbortSignal, opts?: PhaseOptions) => Promise<{ bytes: number }>;
  /** Deletes exactly `files` (relative paths) from the mirror, and nothing else. */
  remove: (files: string[], signal?: AbortSignal) => Promise<{ bytes: number }>;
}

/** After SIGTERM, how long a transport gets before SIGKILL. */
const KILL_GRACE_MS = 2_000;

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** The last non-empty line of a process's output, trimmed for a log line. */
export function lastLine(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines[lines.length - 1] ?? "";
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * Runs argv with `input` on stdin; resolves with its output when it exits 0, rejects with a
 * one-line MirrorFailure otherwise (`explain` picks the line from stderr). An abort of
 * `signal` stops the process group and rejects with the signal's reason (a MirrorFailure
 * "timeout" from push.ts).
 */
export function runTool(
  argv: string[],
  opts: { input?: string; signal?: AbortSignal; env?: NodeJS.ProcessEnv; explain?: (stderr: string) => string; okCodes?: number[] } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(abortReason(opts.signal));
    const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], detached: true, env: opts.env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout = (stdout + d).slice(-65536)));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-65536)));
    child.stdin.on("error", () => {}); // a tool that exits before reading its list: its status says why
    child.stdin.end(opts.input ?? "");
    let killer: NodeJS.Timeout | undefined;
    let settled = false;
    const kill = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const onAbort = () => {
      kill("SIGTERM");
      killer = setTimeout(() => {
        kill("SIGKILL");
        settle(abortReason(opts.signal!)); // a grandchild holding the pipes must not keep us waiting
      }, KILL_GRACE_MS);
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(killer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve({ stdout, stderr });
    };
    child.once("error", (err) => settle(new MirrorFailure(`cannot run ${argv[0]}: ${err.message}`)));
    child.once("close", (code, sig) => {
      if (opts.signal?.aborted) return settle(abortReason(opts.signal));
      if (code === 0 || (code !== null && opts.okCodes?.includes(code))) return settle();
      const why = (opts.explain ?? lastLine)(stderr);
      settle(new MirrorFailure(`${argv[0]} ${sig ? `was killed by ${sig}` : `exited with status ${code}`}${why ? `: ${why}` : ""}`));
    });
  });
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new MirrorFailure("stopped", "timeout");
}
