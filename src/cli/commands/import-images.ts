import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { createLogger, levelFromVerbosity } from "../../io/log.js";
import { importImages } from "../../importer/import-images.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("import-images")
    .description("import a new image for every device of every automatic channel (cron/scheduler job)")
    .option("-v, --verbose", "more output (repeatable)", (_v: string, n: number) => n + 1, 0)
    .option("--dry-run", "print the plan (new version, files, deltas) and write nothing")
    .option("--json-log", "log JSON lines even on a terminal")
    .action(async (opts: { verbose: number; dryRun?: boolean; jsonLog?: boolean }) => {
      const conf = await ctx.config();
      const log = createLogger({ level: levelFromVerbosity(opts.verbose), json: opts.jsonLog ? true : undefined, write: ctx.out });
      const r = await importImages(conf, { log, dryRun: opts.dryRun });
      if (opts.dryRun) {
        if (r.plans.length === 0) ctx.out("Nothing to import: no automatic channel has devices.");
        for (const p of r.plans) {
          ctx.out(`${p.channel}/${p.device}: version ${p.version}${p.bases.length ? `, deltas from ${p.bases.join(", ")}` : ", no delta"}`);
          for (const e of p.entries) ctx.out(`  ${e.name}: ${[e.generator, ...e.arguments].join(";")}`);
          for (const w of p.warnings) ctx.out(`  warning: ${w}`);
        }
        return;
      }
      // One clear line per failed device was logged; the status says whether any failed.
      if (r.failed > 0) process.exitCode = 1;
    });
}
