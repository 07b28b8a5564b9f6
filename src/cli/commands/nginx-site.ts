/**
 * `si nginx-site`: prints an nginx site serving this instance's published tree with exactly
 * the Cache-Control and Content-Type rules of `si serve` (src/deploy/nginx-site.ts; issue 14
 * item 6). The shipped etc/nginx/system-image.conf is `si --config etc/config.example nginx-site`.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { nginxSite, nginxSiteOptions } from "../../deploy/nginx-site.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("nginx-site")
    .description("print an nginx site for the published tree with the same caching rules as si serve")
    .option("--server-name <names>", "server_name (default: public_fqdn)")
    .action(async (opts: { serverName?: string }) => {
      const options = nginxSiteOptions(await ctx.config());
      if (opts.serverName !== undefined) options.serverName = opts.serverName;
      ctx.out(nginxSite(options).trimEnd());
    });
}
