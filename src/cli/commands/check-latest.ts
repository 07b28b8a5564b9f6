/**
 * `si check-latest DEVICE [--server URL] [--channel C]`: the reference's utils/check-latest
 * (server-reference §9.11): the newest full image a channel offers a device, and the deltas
 * that lead to it. Reads `<server>/<channel>/<device>/index.json`; needs no config.
 */
import type { Command } from "commander";
import { CHECK_LATEST_DEFAULTS, checkLatestLines, fetchDeviceIndex } from "../../verify/check-latest.js";
import type { CliContext } from "../context.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("check-latest")
    .description("show the latest full image of a device on a server, and the deltas to it")
    .argument("<device>", "device name")
    .option("--server <url>", "server base URL", CHECK_LATEST_DEFAULTS.server)
    .option("--channel <channel>", "channel name", CHECK_LATEST_DEFAULTS.channel)
    .action(async (device: string, opts: { server: string; channel: string }) => {
      const index = await fetchDeviceIndex(opts.server, opts.channel, device);
      for (const line of checkLatestLines(index, device)) ctx.out(line);
    });
}
