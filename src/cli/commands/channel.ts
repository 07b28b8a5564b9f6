import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { commonOptions, runAdmin, type CommonOptions } from "../admin-options.js";
import * as tc from "../../admin/tree-commands.js";

export function register(program: Command, ctx: CliContext): void {
  const channel = program.command("channel").description("create, remove, rename, alias, redirect, hide, show and list channels");
  const sub = (spec: string, description: string, lock = true) => commonOptions(channel.command(spec).description(description), { lock });

  sub("create <name>", "add a channel (names may contain '/')").action((name: string, o: CommonOptions) =>
    runAdmin(ctx, o, (a) => tc.createChannel(a, name)),
  );
  sub("remove <name>", "remove a channel, its directory (not for aliases/redirects) and device redirects to it").action(
    (name: string, o: CommonOptions) => runAdmin(ctx, o, (a) => tc.removeChannel(a, name)),
  );
  sub("hide <name>", "leave the channel out of device channel lists").action((name: string, o: CommonOptions) =>
    runAdmin(ctx, o, (a) => tc.hideChannel(a, name)),
  );
  sub("show <name>", "list the channel again").action((name: string, o: CommonOptions) => runAdmin(ctx, o, (a) => tc.showChannel(a, name)));
  sub("rename <old> <new>", "rename a channel, moving its directory and rewriting its indexes").action(
    (from: string, to: string, o: CommonOptions) => runAdmin(ctx, o, (a) => tc.renameChannel(a, from, to)),
  );
  sub("alias <name> <target>", "make NAME an alias of TARGET (creates it, or re-targets an existing alias)").action(
    (name: string, target: string, o: CommonOptions) => runAdmin(ctx, o, (a) => tc.aliasChannel(a, name, target)),
  );
  sub("redirect <name> <target>", "make NAME a hidden redirect to TARGET (devices follow TARGET's indexes)").action(
    (name: string, target: string, o: CommonOptions) => runAdmin(ctx, o, (a) => tc.redirectChannel(a, name, target)),
  );
  sub("list", "list the channels", false).action((o: CommonOptions) => runAdmin(ctx, o, (a) => tc.listChannels(a)));
}
