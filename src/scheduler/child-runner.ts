/**
 * Runs one scheduled import in a child process (import-child.ts) for `si serve`, so that an
 * import that dies — an uncaught error in a library, out of memory, SIGKILL — takes nothing
 * else with it (issue 13: one undici assertion used to stop every public port). The child's
 * JSON log lines go to the server log as they come; how it ended becomes the scheduler's
 * result, and a run it left unfinished is closed in the history as failed, with the reason
 * (signal or exit status, and the last error line it wrote).
 */
import { fork } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Config } from "../config/types.js";
import { LockBusyError, SiError, errorMessage } from "../errors.js";
import { BUSY_MESSAGE } from "../io/lock.js";
import type { Fields, Level, Logger } from "../io/log.js";
import type { ImportResult } from "../importer/import-images.js";
import { ImportHistory } from "../state/history.js";
import { currentIdentity } from "../state/process-identity.js";
import type { ChildMessage } from "./import-child.js";

/** The import ended without a result; the history already says why (`message`). */
export class ImportChildError extends SiError {}

export interface ChildRunOptions {
  /** Where the child's log lines go. */
  log: Logger;
  /** Aborting kills the child (SIGKILL); the run is recorded as failed with the abort reason. */
  signal?: AbortSignal;
  /** The compiled child entry (default: import-child.js next to this module). */
  entry?: string;
  /** Node options of the child (default: this process's, e.g. --max-old-space-size). */
  execArgv?: string[];
  /**
   * The reason to record when the child dies of SIGTERM, SIGINT or SIGHUP and this returns
   * one: `systemctl stop` signals the whole service, child included, while si serve stops.
   */
  stopping?: () => string | undefined;
}

/** Lines of the child's stderr kept to explain a death. */
const STDERR_LINES = 40;
const LEVELS = new Set<string>(["debug", "info", "warn", "error"]);

export function defaultChildEntry(): string {
  return fileURLToPath(new URL("./import-child.js", import.meta.url));
}

function isChildMessage(m: unknown): m is ChildMessage {
  return typeof m === "object" && m !== null && typeof (m as { si?: unknown }).si === "string";
}

/** The line of stderr that says what went wrong: V8's fatal error, else the last JS error. */
export function errorLine(stderr: string[]): string | undefined {
  const fatal = stderr.find((l) => l.startsWith("FATAL ERROR:"));
  if (fatal) return fatal;
  return stderr.findLast((l) => /^[A-Za-z_$][\w$]*(Error|Exception)\b/.test(l));
}

/** Sends one JSON line of the child to `log`, keeping its own time, level and fields. */
function forward(log: Logger, line: string): Record<string, unknown> | undefined {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
    if (typeof rec !== "object" || rec === null) throw new Error("not an object");
  } catch {
    if (line.trim()) log.info(line, { stream: "stdout" });
    return undefined;
  }
  const { level, msg, ...fields } = rec;
  const lvl = (typeof level === "string" && LEVELS.has(level) ? level : "info") as Level;
  log[lvl](typeof msg === "string" ? msg : msg === undefined ? "" : JSON.stringify(msg), fields as Fields);
  return rec;
}

/**
 * Makes sure the history shows the child's run as failed with `reason`: its own row if it
 * recorded one (still running, or already marked interrupted by a sweep), else a new row, so
 * that a child that died before it could record anything is not invisible.
 */
function recordFailure(config: Config, pid: number, since: Date, reason: string, log: Logger): void {
  let history: ImportHistory | undefined;
  try {
    history = ImportHistory.open(config.state_path);
    const rows = history.runsOf(pid, since);
    for (const r of rows) if (r.outcome === "running" || r.outcome === "interrupted") history.finishRun(r.id, "failed", reason);
    if (rows.length === 0) {
      const me = currentIdentity();
      const id = history.startRun("schedule", false, since, { pid, bootId: me.bootId, startTime: null, pidNs: me.pidNs });
      history.finishRun(id, "failed", reason);
    }
  } catch (err) {
    log.error(`Cannot record the failed scheduled import in the history: ${errorMessage(err)}`);
  } finally {
    history?.close();
  }
}

/** Runs import-images in a child process; resolves with its result, or throws (see above). */
export async function runImportInChild(config: Config, opts: ChildRunOptions): Promise<ImportResult> {
  const { log } = opts;
  const since = new Date();
  const child = fork(opts.entry ?? defaultChildEntry(), [config.path], {
    silent: true,
    execArgv: opts.execArgv ?? process.execArgv,
    serialization: "json",
  });
  const pid = child.pid;
  let message: ChildMessage | undefined;
  let crash: string | undefined;
  const stderr: string[] = [];
  child.on("message", (m) => {
    if (isChildMessage(m)) message = m;
  });
  createInterface({ input: child.stdout!, crlfDelay: Infinity }).on("line", (line) => {
    const rec = forward(log, line);
    if (rec?.event === "import-crash" && typeof rec.msg === "string") crash = rec.msg.replace(/^import-images crashed: /, "");
  });
  createInterface({ input: child.stderr!, crlfDelay: Infinity }).on("line", (line) => {
    stderr.push(line);
    if (stderr.length > STDERR_LINES) stderr.shift();
  });
  const kill = () => child.kill("SIGKILL");
  opts.signal?.addEventListener("abort", kill, { once: true });
  if (opts.signal?.aborted) kill();
  if (pid !== undefined) log.info("import-images child process started", { pid });

  const end = await new Promise<{ code: number | null; sig: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once("close", (code, sig) => resolve({ code, sig }));
    child.once("error", (error) => {
      // A fork that failed never closes; one that ran still does.
      if (pid === undefined) resolve({ code: null, sig: null, error });
    });
  });
  opts.signal?.removeEventListener("abort", kill);

  if (message?.si === "result") {
    if (end.code !== 0)
      log.warn(`import-images child process ${pid} ended with ${end.sig ?? `status ${end.code}`} after its run finished`, { pid });
    return { runId: message.runId ?? undefined, plans: [], devices: [], published: message.published, failed: message.failed };
  }
  if (message?.si === "lock-busy") throw new LockBusyError(message.message ?? BUSY_MESSAGE);
  if (end.error) throw new SiError(`Cannot start the import process: ${end.error.message}`);

  let reason: string;
  const stopped = end.sig && ["SIGTERM", "SIGINT", "SIGHUP"].includes(end.sig) ? opts.stopping?.() : undefined;
  if (opts.signal?.aborted) reason = errorMessage(opts.signal.reason);
  else if (stopped) reason = stopped;
  else if (message?.si === "error") reason = message.message;
  else {
    const how = end.sig ? `was killed by ${end.sig}` : `exited with status ${end.code}`;
    const detail = crash ?? errorLine(stderr);
    reason = `import process ${pid} ${how}${detail ? `: ${detail}` : end.sig === "SIGKILL" ? " (out of memory, or killed by hand)" : ""}`;
  }
  if (!opts.signal?.aborted && message?.si !== "error" && stderr.length) {
    log.error(`import-images child process ${pid} died; the end of its stderr follows`, { pid, stderr: stderr.join("\n") });
  }
  recordFailure(config, pid!, since, reason, log);
  throw new ImportChildError(reason);
}
