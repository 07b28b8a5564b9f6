import type { Command } from "commander";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { CliContext } from "../context.js";
import { KeyError_, UsageError } from "../../errors.js";
import { keyExists, storeKey } from "../../pgp/keys.js";
import { KEY_NAMES, type KeyName } from "../../pgp/signer.js";
import * as openpgp from "openpgp";

const run = promisify(execFile);

/** Migrates a key from a GnuPG home of a reference installation (`gpg_key_path/<name>/`). */
export function register(program: Command, ctx: CliContext): void {
  program
    .command("import-keys")
    .description("import a signing key from an existing GnuPG home (reference installations)")
    .requiredOption("--gnupg-home <dir>", "GnuPG home holding the secret key")
    .requiredOption("--name <name>", `key name: ${KEY_NAMES.join(", ")}`)
    .option("--force", "replace an existing key")
    .action(async (opts: { gnupgHome: string; name: string; force?: boolean }) => {
      if (!KEY_NAMES.includes(opts.name as KeyName)) throw new UsageError(`invalid --name: ${opts.name} (one of ${KEY_NAMES.join(", ")})`);
      const conf = await ctx.config();
      if (!opts.force && (await keyExists(conf.gpg_key_path, opts.name))) {
        throw new KeyError_(`Cannot import ${opts.name}: a key already exists in ${conf.gpg_key_path}/${opts.name} (use --force)`);
      }
      let armored: string;
      try {
        // The reference signs with the first key listed in the home (server-reference §3.1).
        const list = await run("gpg", ["--homedir", opts.gnupgHome, "--batch", "--with-colons", "--list-secret-keys"]);
        const fpr = list.stdout
          .split("\n")
          .find((l) => l.startsWith("fpr:"))
          ?.split(":")[9];
        if (!fpr) throw new Error("no secret key in it");
        const exp = await run("gpg", [
          "--homedir",
          opts.gnupgHome,
          "--batch",
          "--pinentry-mode",
          "loopback",
          "--passphrase",
          "",
          "--armor",
          "--export-secret-keys",
          fpr,
        ]);
        armored = exp.stdout;
      } catch (err) {
        const msg = err instanceof Error ? (err as Error & { stderr?: string }).stderr?.trim() || err.message : String(err);
        throw new KeyError_(`Cannot import key from ${opts.gnupgHome}: ${msg.split("\n").pop()}`);
      }
      const key = await openpgp.readPrivateKey({ armoredKey: armored });
      await storeKey(conf.gpg_key_path, opts.name, key.armor(), key.toPublic().armor());
      ctx.out(`I: imported ${opts.name}: ${key.getFingerprint().toUpperCase()}`);
    });
}
