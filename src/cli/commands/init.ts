/**
 * `si init DIR`: makes a new instance (src/instance/init.ts) and prints the next commands.
 * It reads no config (it writes one), so `--config` / $SI_CONFIG do not apply.
 */
import type { Command } from "commander";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { UsageError } from "../../errors.js";
import { initInstance } from "../../instance/init.js";
import { CONFIG_FILE } from "../../instance/layout.js";
import type { CliContext } from "../context.js";

interface InitCliOptions {
  fqdn: string;
  httpPort: number;
  httpsPort: number;
  adminPort: number;
  tls: boolean;
  force?: boolean;
  email?: string;
  prefix: string;
}

function port(flag: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`${flag}: expected a port number 0-65535, got '${v}'`);
    return Number(v);
  };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("init <dir>")
    .description(
      "make a new instance in DIR: etc/config, www/, state/, secret/ (0700) with keys and keyrings, published device keyrings, a TLS certificate",
    )
    .option("--fqdn <name>", "public name devices use (public_fqdn, the certificate's name)", hostname())
    .option("--http-port <n>", "public_http_port (0 = no HTTP)", port("--http-port"), 80)
    .option("--https-port <n>", "public_https_port (0 = no HTTPS)", port("--https-port"), 443)
    .option("--admin-port <n>", "admin_port: the dashboard on 127.0.0.1", port("--admin-port"), 8090)
    .option("--no-tls", "make no self-signed certificate: a real one will be installed at tls_cert/tls_key")
    .option("--force", "complete an existing instance: rewrite etc/config (old one kept as etc/config.bak), keep keys, keyrings and tree")
    .option("--email <email>", "e-mail of the key user IDs (default: system-image@<fqdn>)")
    .option("--prefix <prefix>", "prefix of the key user IDs", "System Image")
    .action(async (dir: string, opts: InitCliOptions) => {
      if (!/^[A-Za-z0-9.\-:]+$/.test(opts.fqdn)) throw new UsageError(`--fqdn: expected a host name or IP address, got '${opts.fqdn}'`);
      if (!opts.fqdn.includes(".") && !opts.fqdn.includes(":")) {
        ctx.out(
          `W: public_fqdn '${opts.fqdn}' has no domain: it goes into every image's channel.ini and devices must resolve it (--fqdn NAME)`,
        );
      }
      const root = resolve(dir);
      await initInstance({
        dir: root,
        fqdn: opts.fqdn,
        httpPort: opts.httpPort,
        httpsPort: opts.httpsPort,
        adminPort: opts.adminPort,
        tls: opts.tls,
        force: opts.force ?? false,
        email: opts.email ?? `system-image@${opts.fqdn}`,
        prefix: opts.prefix,
        say: ctx.out,
      });
      const config = join(root, CONFIG_FILE);
      ctx.out(
        [
          "",
          `Instance ready in ${root}. Next (README "Operator walkthrough"):`,
          `  export SI_CONFIG=${config}`,
          "  si channel create devel",
          "  si device create devel <device>",
          `  si import-images -v    # after adding \`channels = devel\` and [channel_devel] at the end of ${config}`,
          "then `si serve`.",
        ].join("\n"),
      );
    });
}
