/**
 * `si nginx-site`: prints an nginx site serving this instance's published tree with exactly
 * the Cache-Control and Content-Type rules of `si serve` (src/deploy/nginx-site.ts; issue 14
 * item 6). The shipped etc/nginx/system-image.conf is `si --config etc/config.example nginx-site`.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { DEFAULT_ACCESS_LOG, nginxSite, nginxSiteOptions } from "../../deploy/nginx-site.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("nginx-site")
    .description("print an nginx site for the published tree with the same caching rules as si serve")
    .option("--server-name <names>", "server_name (default: public_fqdn)")
    .option("--access-log <file>", `the si_json access log, for si fleet report (default: ${DEFAULT_ACCESS_LOG})`)
    .action(async (opts: { serverName?: string; accessLog?: string }) => {
      const options = nginxSiteOptions(await ctx.config());
      if (opts.serverName !== undefined) options.serverName = opts.serverName;
      if (opts.accessLog !== undefined) options.accessLog = opts.accessLog;
      ctx.out(nginxSite(options).trimEnd());
    });
}
