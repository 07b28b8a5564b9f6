import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { createLogger, levelFromVerbosity } from "../../io/log.js";
import { importImages } from "../../importer/import-images.js";
import { renewKeyringIfDue } from "../../keys/renew.js";
import { setProgressSink, terminalProgress } from "../../io/progress.js";
import { basename } from "node:path";
import { constants } from "node:os";
import { ImportHistory } from "../../state/history.js";
import type { Logger } from "../../io/log.js";

/**
 * Ctrl-C, or a timer being stopped (SIGTERM): the run is recorded as interrupted, with the
 * signal, before the process goes (otherwise the next command to open the history would mark
 * it, without saying why). The kernel releases the lock; the next run removes the downloads.
 */
function recordSignals(statePath: string, log: Logger, runId: () => number | undefined): () => void {
  const onSignal = (sig: NodeJS.Signals) => {
    const id = runId();
    if (id !== undefined) {
      try {
        const h = ImportHistory.open(statePath, { sweep: false });
        h.interruptRun(id, `interrupted: si import-images got ${sig}`);
        h.close();
      } catch {
        // The next command that opens the history marks the run anyway.
      }
    }
    log.error(`${sig}: import-images interrupted`);
    process.exit(128 + (constants.signals[sig] ?? 0));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}

/** A message on one line: a newline in an upstream's text must not forge a second error line. */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ");

export function register(program: Command, ctx: CliContext): void {
  program
    .command("import-images")
    .description("import a new image for every device of every automatic channel (cron/scheduler job)")
    .option("-v, --verbose", "more output (repeatable)", (_v: string, n: number) => n + 1, 0)
    .option("--dry-run", "print the plan (new version, files, deltas) and write nothing")
    .option("--json-log", "log JSON lines even on a terminal")
    .action(async (opts: { verbose: number; dryRun?: boolean; jsonLog?: boolean }) => {
      const conf = await ctx.config();
      // On a terminal: human log lines and a live progress bar for downloads; otherwise
      // (cron, systemd, pipes) one JSON log line per step.
      const progress = terminalProgress();
      setProgressSink(progress); // the delta generator's progress too (generators/delta.ts)
      const log = createLogger({
        level: levelFromVerbosity(opts.verbose),
        json: opts.jsonLog ? true : undefined,
        write: (line) => {
          progress.clear();
          ctx.out(line);
        },
      });
      let runId: number | undefined;
      const unhook = opts.dryRun ? () => undefined : recordSignals(conf.state_path, log, () => runId);
      const r = await importImages(conf, {
        log,
        dryRun: opts.dryRun,
        fetchOptions: { onProgress: (url, bytes, total) => progress.update(basename(new URL(url).pathname), bytes, total) },
        onRunStarted: (id) => (runId = id),
      }).finally(unhook);
      progress.clear();
      if (opts.dryRun) {
        if (r.plans.length === 0) ctx.out("Nothing to import: no automatic channel has devices.");
        for (const p of r.plans) {
          ctx.out(`${p.channel}/${p.device}: version ${p.version}${p.bases.length ? `, deltas from ${p.bases.join(", ")}` : ", no delta"}`);
          for (const e of p.entries) ctx.out(`  ${e.name}: ${[e.generator, ...e.arguments].join(";")}`);
          for (const w of p.warnings) ctx.out(`  warning: ${w}`);
        }
        return;
      }
      // keyring_auto_renew_days: the timer/cron job is the scheduler for instances without
      // import_schedule, so it renews too (SECURITY.md); a failed renewal is an error.
      const renewed = await renewKeyringIfDue(conf, log);
      // Each failed device was logged; it also gets the one `si: error:` line every command
      // uses for a failure (stderr, so cron mails it), naming the channel and device.
      for (const d of r.devices) {
        if (d.outcome === "failed") process.stderr.write(`si: error: ${d.channel}/${d.device}: ${oneLine(d.error ?? "import failed")}\n`);
      }
      if (r.failed > 0 || renewed === false) process.exitCode = 1;
    });
}
