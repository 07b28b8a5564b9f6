/**
 * `si verify-tree [--json] [--warn-days N]`: checks the published tree the way devices will
 * (src/verify/verify-tree.ts): one line per problem naming the file, then a summary.
 * Exit status 1 when there is any error; warnings (orphans, keyrings expiring soon) do not fail.
 */
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { formatReport } from "../../verify/report.js";
import { verifyTree } from "../../verify/verify-tree.js";
import type { CliContext } from "../context.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("verify-tree")
    .description("verify signatures, checksums, documents and keyrings of the published tree, as devices will")
    .option("--json", "machine-readable report")
    .option("--warn-days <n>", "warn about keyrings that expire within N days", "30")
    .action(async (opts: { json?: boolean; warnDays: string }) => {
      const warnDays = Number(opts.warnDays);
      if (!Number.isInteger(warnDays) || warnDays < 0) throw new UsageError(`invalid --warn-days: ${opts.warnDays}`);
      const report = await verifyTree(await ctx.config(), { warnDays });
      if (opts.json) ctx.out(JSON.stringify(report, null, 2));
      else for (const line of formatReport(report)) ctx.out(line);
      if (!report.ok) process.exitCode = 1;
    });
}
