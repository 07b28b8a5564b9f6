/**
 * `si fleet report`: adoption per channel, device and image: downloads started and completed
 * and distinct polling clients (src/fleet/, .notes/readme-fleet.md). Without --access-log, the
 * live counts si serve keeps in the state database; with it, the given access logs (si serve's
 * JSON lines, nginx `si_json` or `combined`), attributed against the local published tree.
 */
import type { Command } from "commander";
import { accessSync, constants } from "node:fs";
import { SiError, UsageError } from "../../errors.js";
import { LOG_FORMATS, readAccessLogs, type BadLines, type LogFormat } from "../../fleet/parse.js";
import { fleetReport, type AdoptionRow } from "../../fleet/report.js";
import { liveReport } from "../../fleet/store.js";
import type { CliContext } from "../context.js";

interface ReportOptions {
  accessLog: string[];
  format: string;
  json?: boolean;
}

function table(rows: AdoptionRow[]): string[] {
  if (rows.length === 0) return ["No images published and nothing counted."];
  const head = ["CHANNEL", "DEVICE", "VERSION", "KIND", "BASE", "STARTED", "COMPLETED", "CLIENTS"];
  const cells = rows.map((r) => [
    r.channel,
    r.device,
    String(r.version),
    r.kind,
    r.base === null ? "-" : String(r.base),
    String(r.started),
    String(r.completed),
    String(r.clients),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => (i >= 5 || i === 2 || i === 4 ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(head), ...cells.map(line)];
}

export function register(program: Command, ctx: CliContext): void {
  const fleet = program.command("fleet").description("what devices fetched: adoption of published images");
  fleet
    .command("report")
    .description("downloads started/completed per image and polling clients, from si serve's live counts or from access logs")
    .option(
      "--access-log <file>",
      "an access log to read instead of the live counts (repeatable)",
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .option("--format <format>", `log format: ${LOG_FORMATS.join(", ")} (auto: JSON lines or nginx combined)`, "auto")
    .option("--json", "print the rows as a JSON list")
    .action(async (opts: ReportOptions) => {
      if (!LOG_FORMATS.includes(opts.format as LogFormat)) {
        throw new UsageError(`--format: expected one of ${LOG_FORMATS.join(", ")}, got '${opts.format}'`);
      }
      for (const file of opts.accessLog) {
        try {
          accessSync(file, constants.R_OK);
        } catch (err) {
          throw new SiError(`Cannot read access log ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
      }
      const config = await ctx.config();
      const bad: BadLines = { count: 0, first: [] };
      const rows =
        opts.accessLog.length === 0
          ? liveReport(config.state_path, config.publish_path)
          : await fleetReport(readAccessLogs(opts.accessLog, opts.format as LogFormat, bad), { publishPath: config.publish_path });
      for (const b of bad.first) process.stderr.write(`si: warning: ${b.file}:${b.line}: skipped: ${b.error}\n`);
      if (bad.count > bad.first.length) process.stderr.write(`si: warning: ${bad.count - bad.first.length} more bad line(s) skipped\n`);
      if (opts.json) ctx.out(JSON.stringify(rows, null, 2));
      else for (const l of table(rows)) ctx.out(l);
      if (bad.count > 0 && !opts.json) ctx.out(`(${bad.count} line(s) could not be read: see the warnings)`);
    });
}
