import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { createLogger, levelFromVerbosity } from "../../io/log.js";
import { importImages } from "../../importer/import-images.js";
import { renewKeyringIfDue } from "../../keys/renew.js";
import { terminalProgress } from "../../io/progress.js";
import { basename } from "node:path";

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
      const log = createLogger({
        level: levelFromVerbosity(opts.verbose),
        json: opts.jsonLog ? true : undefined,
        write: (line) => {
          progress.clear();
          ctx.out(line);
        },
      });
      const r = await importImages(conf, {
        log,
        dryRun: opts.dryRun,
        fetchOptions: { onProgress: (url, bytes, total) => progress.update(basename(new URL(url).pathname), bytes, total) },
      });
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
      // One clear line per failed device was logged; the status says whether any failed.
      if (r.failed > 0 || renewed === false) process.exitCode = 1;
    });
}
