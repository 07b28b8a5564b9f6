/**
 * `si rotate-key image-signing|device-signing [--bits N] [--discard-old] [--grace S]`: new key,
 * keyrings rebuilt and published, the whole tree re-signed, as one operation under the global
 * lock (src/keys/rotate.ts explains the order; SECURITY.md the procedure).
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { commonOptions, emit, type CommonOptions } from "../admin-options.js";
import { intOption } from "../../admin/args.js";
import { UsageError } from "../../errors.js";
import { rotateKey } from "../../keys/rotate.js";

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("rotate-key")
    .description("replace the image-signing or device-signing key: publish the new keyrings and re-sign the whole tree")
    .argument("<key>", "image-signing or device-signing")
    .option("--bits <n>", "RSA key size (2048, 3072 or 4096)", intOption("--bits"), 4096)
    .option("--grace <seconds>", "wait between re-signing channels.json and the rest, for clients mid-update", intOption("--grace"), 60)
    .option("--email <email>", "e-mail of the new key's user ID (default: the old key's)")
    .option("--discard-old", "delete the old private key instead of keeping it as private.asc.old-<date>");
  commonOptions(cmd).action(
    async (key: string, o: CommonOptions & { bits: number; grace: number; email?: string; discardOld?: boolean }) => {
      if (o.grace < 0) throw new UsageError(`argument --grace: must be >= 0, got ${o.grace}`);
      const res = await rotateKey(await ctx.config(), key, {
        bits: o.bits,
        graceSeconds: o.grace,
        email: o.email,
        discardOld: o.discardOld,
        lockWaitMs: o.lockTimeout,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      const lines = [
        `I: ${res.key}: ${res.oldFingerprint.toUpperCase()} -> ${res.newFingerprint.toUpperCase()}${res.resumed ? " (finished an interrupted rotation)" : ""}`,
        ...res.keyrings.map((k) => `I: rebuilt ${k}`),
        `I: re-signed ${res.resigned} signature${res.resigned === 1 ? "" : "s"}`,
        res.kept ? `I: old private key kept as ${res.kept}` : "I: old private key discarded",
      ];
      emit(ctx, o, lines, res);
    },
  );
}
