import type { Command } from "commander";
import { resolve } from "node:path";
import { UsageError } from "../../errors.js";
import { compareCodePoints, dumpPyJson } from "../../format/pyjson.js";
import { deltaFileName, makeDelta } from "../../archive/diff/delta.js";
import type { CliContext } from "../context.js";

/** One line per change, sorted by path then kind, like the reference's print_changes (§6.4). */
function changeLines(changes: { added: string[]; changed: string[]; deleted: string[] }): string[] {
  const rows: [string, string][] = [
    ...changes.added.map((p): [string, string] => [p, "add"]),
    ...changes.changed.map((p): [string, string] => [p, "mod"]),
    ...changes.deleted.map((p): [string, string] => [p, "del"]),
  ];
  rows.sort((a, b) => compareCodePoints(a[0], b[0]) || compareCodePoints(a[1], b[1]));
  return rows.map(([p, kind]) => ` - ${p} (${kind})`);
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("diff")
    .description("make the delta tarball that turns image OLD into image NEW (no config needed)")
    .argument("<old>", "source image (.tar.xz, .tar.gz or .tar)")
    .argument("<new>", "target image (.tar.xz, .tar.gz or .tar)")
    .option("-o, --output <path>", "delta file (default: ./<NEW>.delta-<OLD>.tar.xz)")
    .option("--xz-level <n>", "xz preset 0-9", "9")
    .option("--list", "also print every change as ' - <path> (add|mod|del)'")
    .option("--json", "print the summary as JSON")
    .action(async (oldPath: string, newPath: string, opts: { output?: string; xzLevel: string; list?: boolean; json?: boolean }) => {
      const level = Number(opts.xzLevel);
      if (!Number.isInteger(level) || level < 0 || level > 9) throw new UsageError(`invalid --xz-level: ${opts.xzLevel}`);
      const out = resolve(opts.output ?? deltaFileName(oldPath, newPath));
      const s = await makeDelta(resolve(oldPath), resolve(newPath), out, { xzLevel: level });
      if (opts.list) for (const line of changeLines(s.changes)) ctx.out(line);
      if (opts.json) {
        const { changes: _changes, ...summary } = s;
        ctx.out(dumpPyJson(summary).trimEnd());
        return;
      }
      for (const w of s.warnings) ctx.out(`W: ${w}`);
      ctx.out(`delta: ${s.path}`);
      ctx.out(`added: ${s.added}`);
      ctx.out(`changed: ${s.changed}`);
      ctx.out(`removed: ${s.deleted}`);
      ctx.out(`removed list: ${s.removedLines} path(s)`);
      ctx.out(`members: ${s.members} (+ removed)`);
      ctx.out(`uncompressed: ${s.uncompressedBytes} bytes`);
      ctx.out(`compressed: ${s.compressedBytes} bytes`);
      ctx.out(`sha256: ${s.sha256}`);
    });
}
