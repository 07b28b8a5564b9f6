import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { commonOptions, runAdmin, type CommonOptions } from "../admin-options.js";
import * as tc from "../../admin/tree-commands.js";

export function register(program: Command, ctx: CliContext): void {
  const keyring = program.command("keyring").description("publish keyrings into the tree's gpg/ directory");
  commonOptions(
    keyring
      .command("publish <name>")
      .description("copy gpg_keyring_path/NAME.tar.xz and its .asc into gpg/ (archive-master, image-master, image-signing, blacklist)"),
  ).action((name: string, o: CommonOptions) => runAdmin(ctx, o, (a) => tc.publishKeyring(a, name)));
}
