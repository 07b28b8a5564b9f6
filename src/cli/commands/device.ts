import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { commonOptions, runAdmin, type CommonOptions } from "../admin-options.js";
import * as tc from "../../admin/tree-commands.js";

export function register(program: Command, ctx: CliContext): void {
  const device = program.command("device").description("create, remove, redirect and list the devices of a channel; set device keyrings");
  const sub = (spec: string, description: string, lock = true) => commonOptions(device.command(spec).description(description), { lock });

  sub("create <channel> <device>", "add a device (its directory and an empty signed index.json)")
    .option("--keyring <path>", "device keyring tarball in the tree (its .asc beside it)")
    .action((channel: string, name: string, o: CommonOptions & { keyring?: string }) =>
      runAdmin(ctx, o, (a) => tc.createDevice(a, channel, name, o.keyring)),
    );
  sub("remove <channel> <device>", "remove a device and its directory (a redirect: only the entry)").action(
    (channel: string, name: string, o: CommonOptions) => runAdmin(ctx, o, (a) => tc.removeDevice(a, channel, name)),
  );
  sub("keyring <channel> <device> <path>", "set the device keyring (a tarball in the tree, signed)").action(
    (channel: string, name: string, path: string, o: CommonOptions) => runAdmin(ctx, o, (a) => tc.setDeviceKeyring(a, channel, name, path)),
  );
  sub("redirect <channel> <device> <target>", "per-device redirect: CHANNEL's DEVICE follows TARGET's index").action(
    (channel: string, name: string, target: string, o: CommonOptions) =>
      runAdmin(ctx, o, (a) => tc.redirectDevice(a, channel, name, target)),
  );
  sub("list <channel>", "list the devices of a channel", false).action((channel: string, o: CommonOptions) =>
    runAdmin(ctx, o, (a) => tc.listDevices(a, channel)),
  );
}
