/**
 * `si blacklist-key FINGERPRINT [--key-file F] [--force]`: add a compromised key to the
 * blacklist keyring and publish it (src/keys/blacklist.ts, SECURITY.md "Revoking a key").
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { commonOptions, emit, type CommonOptions } from "../admin-options.js";
import { blacklistKey } from "../../keys/blacklist.js";

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("blacklist-key")
    .description("add a key to the blacklist keyring (devices then refuse anything it signed) and publish it")
    .argument("<fingerprint>", "full v4 fingerprint of the key")
    .option("--key-file <file>", "the key's public key (armoured or binary), when it is not one of this instance's keys")
    .option("--force", "allow blacklisting a key the fleet still depends on (bricks devices until fixed)");
  commonOptions(cmd).action(async (fpr: string, o: CommonOptions & { keyFile?: string; force?: boolean }) => {
    const res = await blacklistKey(await ctx.config(), fpr, {
      keyFile: o.keyFile,
      force: o.force,
      lockWaitMs: o.lockTimeout,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const lines = [
      res.added ? `I: blacklisted ${res.fingerprint.toUpperCase()}` : `W: ${res.fingerprint.toUpperCase()} was already blacklisted`,
      `I: the blacklist keyring now holds ${res.blacklisted.length} key${res.blacklisted.length === 1 ? "" : "s"}; published gpg/blacklist.tar.xz`,
    ];
    emit(ctx, o, lines, res);
  });
}
