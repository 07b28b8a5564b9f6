/**
 * `si check-latest DEVICE [--server URL] [--channel C] [--ca FILE]`: the reference's
 * utils/check-latest (server-reference §9.11): the newest full image a channel offers a
 * device, and the deltas that lead to it, read from `<server>/<channel>/<device>/index.json`.
 *
 * Unlike the reference, whose default server was its own organisation's, `--server`
 * defaults to this instance as devices see it (issue 15 item 6): `public_fqdn` with
 * `public_https_port` when that is on, else `public_http_port` (channel.ini's values).
 * `--ca FILE` trusts a CA (PEM) for HTTPS besides the system ones: the self-signed
 * certificate of `si init`, or a private CA.
 */
import type { Command } from "commander";
import { Agent } from "undici";
import { rootCertificates } from "node:tls";
import type { Config } from "../../config/types.js";
import { readCaFile } from "../../io/ca-file.js";
import { ConfigError, SiError, errorMessage } from "../../errors.js";
import { CHECK_LATEST_DEFAULTS, checkLatestLines, fetchDeviceIndex } from "../../verify/check-latest.js";
import type { CliContext } from "../context.js";

const isOn = (port: string | undefined) => port !== undefined && port !== "" && port !== "0";

/** This instance's public base URL, as channel.ini gives it to devices (HTTPS when on). */
export function instanceServerUrl(conf: Pick<Config, "path" | "public_fqdn" | "public_http_port" | "public_https_port">): string {
  if (!conf.public_fqdn) {
    throw new ConfigError(`Cannot choose a server for check-latest: public_fqdn is not set in ${conf.path} (give --server URL)`);
  }
  const host = conf.public_fqdn.includes(":") ? `[${conf.public_fqdn}]` : conf.public_fqdn;
  if (isOn(conf.public_https_port)) return `https://${host}${conf.public_https_port === "443" ? "" : `:${conf.public_https_port}`}`;
  if (isOn(conf.public_http_port)) return `http://${host}${conf.public_http_port === "80" ? "" : `:${conf.public_http_port}`}`;
  throw new ConfigError(
    `Cannot choose a server for check-latest: public_http_port and public_https_port are both 0 or unset in ${conf.path} (give --server URL)`,
  );
}

/** An undici Agent trusting the system's CAs plus the ones in `file` (PEM). */
function agentTrusting(file: string): Agent {
  // `ca` replaces the default trust store, so the system's roots are passed along with it.
  return new Agent({ connect: { ca: [...rootCertificates, readCaFile(file)] } });
}

/** The config, for the default server; when there is none, the error says --server is the other way. */
async function instanceConfig(ctx: CliContext): Promise<Config> {
  try {
    return await ctx.config();
  } catch (err) {
    throw new ConfigError(`Cannot choose a server for check-latest: ${errorMessage(err)} (give --server URL)`, "Exception", { cause: err });
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("check-latest")
    .description("show the latest full image of a device on a server (default: this instance), and the deltas to it")
    .argument("<device>", "device name")
    .option("--server <url>", "server base URL (default: this instance's public_fqdn and port from the config)")
    .option("--channel <channel>", "channel name", CHECK_LATEST_DEFAULTS.channel)
    .option("--ca <file>", "also trust this CA certificate (PEM) for HTTPS, e.g. a self-signed secret/tls/cert.pem")
    .action(async (device: string, opts: { server?: string; channel: string; ca?: string }) => {
      const server = (opts.server ?? instanceServerUrl(await instanceConfig(ctx))).replace(/\/+$/, "");
      const dispatcher = opts.ca ? agentTrusting(opts.ca) : undefined;
      try {
        const index = await fetchDeviceIndex(server, opts.channel, device, dispatcher ? { dispatcher } : {});
        for (const line of checkLatestLines(index, device)) ctx.out(line);
      } catch (err) {
        // An HTTPS server with a private or self-signed certificate: say how to trust it.
        if (!opts.ca && server.startsWith("https:") && /certificate|self[- ]signed|issuer/i.test(errorMessage(err))) {
          throw new SiError(`${errorMessage(err)} (give --ca FILE to trust its certificate or CA)`, "Exception", { cause: err });
        }
        throw err;
      } finally {
        await dispatcher?.close();
      }
    });
}
