import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { UsageError } from "../../errors.js";
import { ImportHistory } from "../../state/history.js";

function fmtBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("history")
    .description("import history: one entry per run, one line per channel/device; runs whose process died are shown as interrupted")
    .option("--limit <n>", "number of runs", "20")
    .option("--json", "machine-readable output")
    .action(async (opts: { limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`invalid --limit: ${opts.limit}`);
      const conf = await ctx.config();
      // Opening marks runs left "running" by a process that is gone as interrupted.
      const history = ImportHistory.open(conf.state_path);
      try {
        const runs = history.listRuns(limit);
        if (opts.json) {
          ctx.out(JSON.stringify(runs, null, 2));
          return;
        }
        if (runs.length === 0) ctx.out("No imports recorded yet.");
        for (const r of runs) {
          const dur = r.finished_at
            ? `${((Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000).toFixed(1)} s`
            : `running${r.pid ? ` (pid ${r.pid})` : ""}`;
          ctx.out(
            `#${r.id} ${r.started_at} ${r.trigger}${r.dry_run ? " (dry run)" : ""}: ${r.outcome}, ${dur}${r.error ? ` — ${r.error}` : ""}`,
          );
          for (const d of r.devices) {
            const v = d.version ? ` version ${d.version}` : "";
            const size = d.files ? `, ${d.files} files, ${fmtBytes(d.bytes)}` : "";
            ctx.out(
              `  ${d.channel}/${d.device}: ${d.outcome}${v}${size}, ${(d.duration_ms / 1000).toFixed(1)} s${d.error ? ` — ${d.error}` : ""}`,
            );
          }
        }
      } finally {
        history.close();
      }
    });
}
