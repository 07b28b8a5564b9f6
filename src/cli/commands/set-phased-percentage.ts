import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { intOption } from "../../admin/args.js";
import { adminContext, commonOptions, emit, type CommonOptions } from "../admin-options.js";
import { describePhased, setPhased } from "../../admin/phased.js";

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("set-phased-percentage")
    .description("offer the latest image of a device to only PERCENTAGE % of devices (100 = everyone)")
    .argument("<channel>")
    .argument("<device>")
    .argument("<version>", "the latest version of the device", intOption("VERSION"))
    .argument("<percentage>", "0-100", intOption("PERCENTAGE"));
  commonOptions(cmd).action(async (channel: string, device: string, version: number, percentage: number, o: CommonOptions) => {
    const res = await setPhased(await adminContext(ctx, o), { channel, device, version, percentage });
    emit(ctx, o, describePhased(res), res);
  });
}
