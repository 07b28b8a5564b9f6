/**
 * `si verify-tree [--json] [--warn-days N]`: checks the published tree the way devices will
 * (src/verify/verify-tree.ts): one line per problem naming the file, then a summary.
 * `si verify-tree --server URL [--ca FILE] [--deep]`: checks a mirror or CDN instead, as a
 * device sees it, against this instance's trust root and tree (src/verify/remote.ts); each
 * problem names its URL, the summary gives files, bytes and the lag behind this instance.
 * Exit status 1 when there is any error; warnings (orphans, keyrings expiring soon) do not fail.
 */
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { formatRemoteReport, verifyRemoteTree } from "../../verify/remote.js";
import { formatReport } from "../../verify/report.js";
import { verifyTree } from "../../verify/verify-tree.js";
import type { CliContext } from "../context.js";

interface Options {
  json?: boolean;
  warnDays: string;
  server?: string;
  ca?: string;
  deep?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("verify-tree")
    .description("verify signatures, checksums, documents and keyrings of the published tree (or of a mirror: --server), as devices will")
    .option("--json", "machine-readable report")
    .option("--warn-days <n>", "warn about keyrings that expire within N days", "30")
    .option("--server <url>", "check the mirror or CDN at this base URL instead of the local tree")
    .option("--ca <file>", "with --server: also trust this CA certificate (PEM) for HTTPS")
    .option("--deep", "with --server: download every file to check its sha256 and signature (streamed)")
    .action(async (opts: Options) => {
      const warnDays = Number(opts.warnDays);
      if (!Number.isInteger(warnDays) || warnDays < 0) throw new UsageError(`invalid --warn-days: ${opts.warnDays}`);
      if (!opts.server && (opts.ca !== undefined || opts.deep)) throw new UsageError("--ca and --deep need --server URL");
      if (opts.server) {
        const report = await verifyRemoteTree({ url: opts.server, config: await ctx.config(), ca: opts.ca, deep: opts.deep, warnDays });
        if (opts.json) ctx.out(JSON.stringify(report, null, 2));
        else for (const line of formatRemoteReport(report)) ctx.out(line);
        if (!report.ok) process.exitCode = 1;
        return;
      }
      const report = await verifyTree(await ctx.config(), { warnDays });
      if (opts.json) ctx.out(JSON.stringify(report, null, 2));
      else for (const line of formatReport(report)) ctx.out(line);
      if (!report.ok) process.exitCode = 1;
    });
}
