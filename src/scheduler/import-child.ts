/**
 * The process a scheduled import runs in (child-runner.ts forks it; `si serve` never imports
 * in its own process): whatever kills an import — an uncaught error deep in a library (issue
 * 13 item 7: undici's `assert(!this.paused)`), running out of memory, SIGKILL — kills this
 * process only, and serving goes on.
 *
 * Protocol: argv[2] is the config file. stdout carries JSON log lines, which the parent
 * writes to the server log. One IPC message says how it ended:
 *   { si: "result", runId, published, failed } | { si: "lock-busy" } | { si: "error", message }
 * A process that ends without one of these died; the parent records why.
 *
 * Test hook, documented for operators too (README): when SI_IMPORT_CHILD_FAULT_FILE names an
 * existing file, the child reads a fault from it ("throw" or "abort"), deletes it (so only
 * one run faults) and, once its run is recorded in the history, either throws an uncaught
 * error from a timer, as the undici assertion did, or calls process.abort() (SIGABRT, as a
 * V8 fatal error does). Nothing happens when the variable is unset.
 */
import { readFileSync, rmSync, writeSync } from "node:fs";
import { loadConfig } from "../config/load.js";
import { LockBusyError, errorMessage } from "../errors.js";
import { createLogger } from "../io/log.js";
import { importImages } from "../importer/import-images.js";

export type ChildMessage =
  | { si: "result"; runId: number | null; published: number; failed: number }
  | { si: "lock-busy"; message?: string }
  | { si: "error"; message: string };

/** The fields every line of a scheduled import carries in the server log. */
const FIELDS = { component: "scheduler", trigger: "schedule" };

/**
 * Synchronous, so the line is out even when the process dies right after. If `si serve` is
 * gone (its end of the pipe closed: EPIPE), the import still finishes and records itself in
 * the history; only its log lines are lost.
 */
function writeLine(line: string): void {
  try {
    writeSync(1, line + "\n");
  } catch {
    // No reader any more.
  }
}

/** The parent takes the message of an uncaught error from this line (event "import-crash"). */
process.on("uncaughtExceptionMonitor", (err) => {
  writeLine(
    JSON.stringify({
      time: new Date().toISOString(),
      level: "error",
      msg: `import-images crashed: ${errorMessage(err)}`,
      event: "import-crash",
      ...FIELDS,
    }),
  );
});

function takeFault(): string | undefined {
  const file = process.env.SI_IMPORT_CHILD_FAULT_FILE;
  if (!file) return undefined;
  try {
    const fault = readFileSync(file, "utf8").trim();
    rmSync(file, { force: true });
    return fault;
  } catch {
    return undefined;
  }
}

function fault(kind: string): void {
  if (kind === "abort") process.abort();
  setTimeout(() => {
    throw new Error(`test fault (SI_IMPORT_CHILD_FAULT_FILE): uncaught error in the import`);
  }, 0);
}

function send(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

async function run(): Promise<ChildMessage> {
  const configPath = process.argv[2];
  if (!configPath) return { si: "error", message: "import child: no config file given" };
  const pending = takeFault();
  const config = await loadConfig(configPath);
  const log = createLogger({ level: "info", json: true, write: writeLine }, FIELDS);
  try {
    const r = await importImages(config, {
      log,
      trigger: "schedule",
      onRunStarted: () => {
        if (pending) fault(pending);
      },
    });
    return { si: "result", runId: r.runId ?? null, published: r.published, failed: r.failed };
  } catch (err) {
    // The message names the holder (io/lock.ts busyMessage): the server log says who.
    if (err instanceof LockBusyError) return { si: "lock-busy", message: err.message };
    throw err;
  }
}

void run()
  .catch((err: unknown): ChildMessage => ({ si: "error", message: errorMessage(err) }))
  .then(async (msg) => {
    await send(msg);
    // Nothing is left to do: a keep-alive socket or a timer must not keep the child around.
    process.exit(msg.si === "error" ? 1 : 0);
  });
