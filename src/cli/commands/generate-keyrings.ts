import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { buildKeyrings } from "../../pgp/keyring-build.js";
import { LocalSigner } from "../../pgp/local-signer.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("generate-keyrings")
    .description("build the keyring tarballs (archive-master, image-master, image-signing, device-signing, blacklist)")
    .option("--force", "replace keyrings that already exist (atomically)")
    .action(async (opts: { force?: boolean }) => {
      const conf = await ctx.config();
      const { built, skipped } = await buildKeyrings({
        keyPath: conf.gpg_key_path,
        keyringPath: conf.gpg_keyring_path,
        signer: new LocalSigner(conf.gpg_key_path),
        imageSigningDays: conf.image_signing_expiry_days,
        deviceSigningDays: conf.device_signing_expiry_days,
        force: opts.force,
        xzLevel: conf.xz_level,
      });
      for (const k of built) {
        const exp = k.expiry ? `expires ${new Date(k.expiry * 1000).toISOString().slice(0, 10)}` : "no expiry";
        ctx.out(`I: ${k.path} (signed by ${k.signer}, ${exp})`);
      }
      for (const s of skipped) ctx.out(`W: skipped ${s}`);
    });
}
