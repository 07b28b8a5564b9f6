import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { UsageError } from "../../errors.js";
import { ImportHistory } from "../../state/history.js";
import type { Config } from "../../config/types.js";
import { pushMirrorsOf } from "../../mirror/push.js";
import { MirrorStore, type PushRow } from "../../mirror/store.js";

/** The newest pushes of every rsync/rclone mirror, newest first (issue 16: pushes are part of the history). */
function mirrorPushes(conf: Config, limit: number): PushRow[] {
  const names = pushMirrorsOf(conf).map((m) => m.name);
  if (names.length === 0) return [];
  const store = MirrorStore.open(conf.state_path);
  try {
    return names
      .flatMap((n) => store.pushes(n, limit))
      .sort((a, b) => b.started_at.localeCompare(a.started_at) || b.id - a.id)
      .slice(0, limit);
  } finally {
    store.close();
  }
}

function fmtBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("history")
    .description("import history: one entry per run, one line per channel/device; runs whose process died are shown as interrupted")
    .option("--limit <n>", "number of runs", "20")
    .option("--json", "machine-readable output")
    .option("--mirrors", "the pushes to rsync/rclone mirrors instead (one line per push, with its phases)")
    .action(async (opts: { limit: string; json?: boolean; mirrors?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`invalid --limit: ${opts.limit}`);
      const conf = await ctx.config();
      if (opts.mirrors) {
        const pushes = mirrorPushes(conf, limit);
        if (opts.json) return ctx.out(JSON.stringify(pushes, null, 2));
        if (pushes.length === 0) ctx.out("No mirror pushes recorded yet.");
        for (const p of pushes) {
          const dur = p.finished_at ? `${((Date.parse(p.finished_at) - Date.parse(p.started_at)) / 1000).toFixed(1)} s` : "running";
          ctx.out(
            `${p.started_at} mirror ${p.mirror} (${p.trigger}): ${p.outcome}, ${p.files} files, ${fmtBytes(p.bytes)}, ${dur}${p.error ? ` — ${p.error}` : ""}`,
          );
          for (const ph of p.phases)
            ctx.out(`  ${ph.phase}: ${ph.files} files, ${fmtBytes(ph.bytes)}, ${(ph.duration_ms / 1000).toFixed(1)} s`);
        }
        return;
      }
      // Opening marks runs left "running" by a process that is gone as interrupted.
      const history = ImportHistory.open(conf.state_path);
      try {
        const runs = history.listRuns(limit);
        if (opts.json) {
          ctx.out(JSON.stringify(runs, null, 2));
          return;
        }
        if (runs.length === 0) ctx.out("No imports recorded yet.");
        const pushes = mirrorPushes(conf, 1);
        if (pushes.length > 0) ctx.out(`(mirror pushes: si history --mirrors; last ${pushes[0].started_at}, ${pushes[0].outcome})`);
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
