import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { intOption } from "../../admin/args.js";
import { adminContext, commonOptions, emit, type CommonOptions } from "../admin-options.js";
import { checkCopyArguments, copyImage, describeCopy } from "../../admin/copy-image.js";
import { DEFAULT_PUSH_URL } from "../../admin/push.js";

interface Options extends CommonOptions {
  version?: number;
  offset?: number;
  keepVersion?: boolean;
  phasedPercentage: number;
  tag?: string;
  pushNotify?: boolean;
  pushUrl: string;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("copy-image")
    .description("publish a full image of one channel as a new image of another (promotion), sharing its files")
    .argument("<source-channel>")
    .argument("<destination-channel>")
    .argument("<device>")
    .option("-r, --version <n>", "source version (default: the latest)", intOption("-r/--version"))
    .option("-o, --offset <n>", "subtract from the source version", intOption("-o/--offset"))
    .option("-k, --keep-version", "use the source version number in the destination (needs -r)")
    .option("-p, --phased-percentage <pct>", "offer the new image to this share of devices", intOption("-p/--phased-percentage"), 100)
    .option("-t, --tag <tag>", "replace the image's tag (version_detail tag=)")
    .option("-q, --push-notify", "notify the push service of the new image")
    .option("--push-url <url>", "push service endpoint", DEFAULT_PUSH_URL);
  commonOptions(cmd).action(async (source: string, destination: string, device: string, o: Options) => {
    const req = {
      source,
      destination,
      device,
      version: o.version,
      offset: o.offset,
      keepVersion: o.keepVersion,
      phased: o.phasedPercentage,
      tag: o.tag,
      push: o.pushNotify,
      pushUrl: o.pushUrl,
    };
    checkCopyArguments(req); // before loading anything or taking the lock
    const res = await copyImage(await adminContext(ctx, o), req);
    emit(ctx, o, describeCopy(res), res);
  });
}
