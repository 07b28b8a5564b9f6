import type { Command } from "commander";
import { hostname } from "node:os";
import type { CliContext } from "../context.js";
import { UsageError } from "../../errors.js";
import { KEY_TITLES, generateKey, keyExists, storeKey } from "../../pgp/keys.js";
import { KEY_NAMES } from "../../pgp/signer.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("generate-keys")
    .description("create the five RSA signing keys under gpg_key_path (private files mode 0600)")
    .option(
      "--email <email>",
      "e-mail of the key user IDs",
      `system-image@${hostname().includes(".") ? hostname() : "localhost.localdomain"}`,
    )
    .option("--prefix <prefix>", "prefix of the key user IDs", "System Image")
    .option("--bits <n>", "RSA key size (devices' GnuPG 1.4 verifies RSA only)", "4096")
    .option("--force", "replace keys that already exist")
    .action(async (opts: { email: string; prefix: string; bits: string; force?: boolean }) => {
      const bits = Number(opts.bits);
      if (!Number.isInteger(bits)) throw new UsageError(`invalid --bits: ${opts.bits}`);
      const conf = await ctx.config();
      ctx.out("I: Generating signing keys...");
      for (const name of KEY_NAMES) {
        if (!opts.force && (await keyExists(conf.gpg_key_path, name))) {
          ctx.out(`W: The key "${name}" already exists (use --force to replace it)`);
          continue;
        }
        const key = await generateKey({ name: `${opts.prefix} ${KEY_TITLES[name]}`, email: opts.email, bits });
        await storeKey(conf.gpg_key_path, name, key.privateArmored, key.publicArmored);
        ctx.out(`I: ${name}: ${key.fingerprint.toUpperCase()} (rsa${bits})`);
      }
      ctx.out("I: Done");
    });
}
