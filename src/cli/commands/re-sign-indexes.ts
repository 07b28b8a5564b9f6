import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { adminContext, commonOptions, emit, type CommonOptions } from "../admin-options.js";
import { describeReSign, reSignIndexes } from "../../admin/re-sign.js";

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("re-sign-indexes")
    .description("after rotating the image-signing key: re-sign channels.json, every index.json and the files devices still download")
    .option("--all", "also re-sign the files of older full images");
  commonOptions(cmd).action(async (o: CommonOptions & { all?: boolean }) => {
    const res = await reSignIndexes(await adminContext(ctx, o), { all: o.all });
    emit(ctx, o, describeReSign(res), res);
  });
}
