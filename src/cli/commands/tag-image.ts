import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { intOption } from "../../admin/args.js";
import { adminContext, commonOptions, emit, type CommonOptions } from "../admin-options.js";
import { describeTag, tagImage } from "../../admin/tag-image.js";

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("tag-image")
    .description("re-publish the latest image N as N+1 with a new tag (its phased percentage carries over); '' clears the tag")
    .argument("<channel>")
    .argument("<device>")
    .argument("<version>", "the latest version of the device", intOption("VERSION"))
    .argument("<tag>");
  commonOptions(cmd).action(async (channel: string, device: string, version: number, tag: string, o: CommonOptions) => {
    const res = await tagImage(await adminContext(ctx, o), { channel, device, version, tag });
    emit(ctx, o, describeTag(res), res);
  });
}
