import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { UsageError } from "../../errors.js";
import { createLogger, levelFromVerbosity } from "../../io/log.js";
import { mirrorBusy } from "../../mirror/lock.js";
import { lagSeconds, localChannels } from "../../mirror/metrics.js";
import { pushMirrors, pushMirrorsOf } from "../../mirror/push.js";
import { MirrorStore } from "../../mirror/store.js";

const size = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);

export function register(program: Command, ctx: CliContext): void {
  const mirror = program.command("mirror").description("push the tree to rsync and rclone mirrors (issue 16)");

  mirror
    .command("push [names...]")
    .description("push to every rsync/rclone mirror now, or to the named ones; exit 1 if any push failed")
    .option("-v, --verbose", "more output (repeatable)", (_v: string, n: number) => n + 1, 0)
    .option("--json-log", "log JSON lines even on a terminal")
    .action(async (names: string[], opts: { verbose: number; jsonLog?: boolean }) => {
      const conf = await ctx.config();
      const known = pushMirrorsOf(conf).map((m) => m.name);
      for (const n of names) {
        const m = conf.mirrors[n];
        if (!m)
          throw new UsageError(
            `Cannot push to mirror '${n}': no such mirror in the config (mirrors: ${Object.keys(conf.mirrors).join(", ") || "none"})`,
          );
        if (!known.includes(n))
          throw new UsageError(`Cannot push to mirror '${n}': it is a 'type = ${m.type}' mirror, only rsync and rclone mirrors are pushed`);
      }
      if (known.length === 0) {
        ctx.out("No rsync or rclone mirror in the config: nothing to push.");
        return;
      }
      const log = createLogger({ level: levelFromVerbosity(opts.verbose), json: opts.jsonLog ? true : undefined, write: ctx.out });
      const results = await pushMirrors(conf, { log, trigger: "cli", names: names.length ? names : undefined });
      if (results.some((r) => r.outcome !== "ok")) process.exitCode = 1;
    });

  mirror
    .command("status")
    .description("each mirror: type, last push (time, outcome, bytes), lag, removals waiting for their grace")
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }) => {
      const conf = await ctx.config();
      const now = Date.now();
      const local = localChannels(conf.publish_path);
      const store = MirrorStore.open(conf.state_path);
      const rows = [];
      try {
        for (const m of Object.values(conf.mirrors).sort((a, b) => (a.name < b.name ? -1 : 1))) {
          if (m.type === "trigger") {
            rows.push({ mirror: m.name, type: m.type, target: m.ssh_host });
            continue;
          }
          const s = store.summary(m.name);
          // A "running" row whose lock is free belongs to a process that died.
          const last =
            s.last && s.last.outcome === "running" && !(await mirrorBusy(conf.state_path, m.name))
              ? { ...s.last, outcome: "interrupted" as const }
              : s.last;
          rows.push({
            mirror: m.name,
            type: m.type,
            target: m.type === "rsync" ? m.target : m.remote,
            last_push: last,
            last_success: s.lastSuccessMs === null ? null : new Date(s.lastSuccessMs).toISOString(),
            lag_seconds: lagSeconds(s, local, now),
            bytes_total: s.bytesTotal,
            pending_removals: s.pending.count,
            next_removal: s.pending.nextMs === null ? null : new Date(s.pending.nextMs).toISOString(),
          });
        }
      } finally {
        store.close();
      }
      if (opts.json) {
        ctx.out(JSON.stringify(rows, null, 2));
        return;
      }
      if (rows.length === 0) ctx.out("No mirrors in the config.");
      for (const r of rows) {
        if (!("last_push" in r)) {
          ctx.out(`${r.mirror} (trigger ${r.target}): asked over ssh to pull; no push state`);
          continue;
        }
        const p = r.last_push;
        const last = p
          ? `last push ${p.started_at} (${p.trigger}): ${p.outcome}, ${p.files} files, ${size(p.bytes)}${p.error ? ` — ${p.error}` : ""}`
          : "never pushed";
        const lag = r.lag_seconds === null ? "lag unknown (no local channels.json)" : `lag ${r.lag_seconds} s`;
        const pending = r.pending_removals
          ? `, ${r.pending_removals} removal(s) pending (first due ${r.next_removal})`
          : ", no removals pending";
        ctx.out(`${r.mirror} (${r.type} ${r.target}): ${last}; last success ${r.last_success ?? "never"}; ${lag}${pending}`);
      }
    });
}
