/**
 * `si serve`: serves the published tree to devices and flashing tools over HTTP and HTTPS
 * until SIGTERM/SIGINT, then stops gracefully (in-flight downloads finish, exit 0).
 * SIGHUP re-reads the TLS certificate and key (after a renewal) without dropping anyone.
 * Logs are JSON lines on stdout, starting with one `listening` line per listener.
 */
import type { Command } from "commander";
import { UsageError, errorMessage } from "../../errors.js";
import { jsonLineLogger } from "../../server/log.js";
import { startServer } from "../../server/start.js";
import type { CliContext } from "../context.js";

interface ServeOptions {
  address: string;
  httpPort?: number | "off";
  httpsPort?: number | "off";
  accessLog: boolean;
}

/** `--http-port N`: 0 = any free port, `off` = no listener (commander cannot store null). */
function portOption(flag: string) {
  return (value: string): number | "off" => {
    if (value === "off" || value === "disabled") return "off";
    if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`${flag}: expected a port number 0-65535 or 'off', got '${value}'`);
    return Number(value);
  };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("serve")
    .description("serve the published tree over HTTP and HTTPS (ports from public_http_port / public_https_port)")
    .option("--address <addr>", "address to bind", "0.0.0.0")
    .option("--http-port <port>", "HTTP port instead of public_http_port (0 = any free port, 'off')", portOption("--http-port"))
    .option("--https-port <port>", "HTTPS port instead of public_https_port (0 = any free port, 'off')", portOption("--https-port"))
    .option("--no-access-log", "log warnings only, not every request")
    .action(async (opts: ServeOptions) => {
      const config = await ctx.config();
      const logger = jsonLineLogger((lines) => ctx.out(lines));
      const server = await startServer(config, {
        address: opts.address,
        httpPort: opts.httpPort === "off" ? null : opts.httpPort,
        httpsPort: opts.httpsPort === "off" ? null : opts.httpsPort,
        accessLog: opts.accessLog,
        logger,
      });
      for (const [name, url] of Object.entries(server.urls)) {
        logger.log({ level: "info", event: "listening", listener: name, url, message: `Serving ${config.publish_path} on ${url}` });
      }
      logger.flush?.();
      await waitForStop(server, logger);
    });
}

/** Resolves after the first SIGTERM/SIGINT has closed everything; a second one cuts short. */
function waitForStop(
  server: { close(): Promise<void>; reloadTls(): Promise<void> },
  logger: ReturnType<typeof jsonLineLogger>,
): Promise<void> {
  return new Promise((resolve) => {
    const onHup = () => {
      server.reloadTls().then(
        () => logger.log({ level: "info", event: "tls-reloaded", message: "Reloaded TLS certificate and key" }),
        (err: unknown) => logger.log({ level: "error", event: "tls-reload-failed", message: errorMessage(err) }),
      );
    };
    const onStop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", onStop);
      process.off("SIGINT", onStop);
      process.off("SIGHUP", onHup);
      logger.log({ level: "info", event: "stopping", signal, message: `${signal}: finishing in-flight responses` });
      const again = () => process.exit(1);
      process.once("SIGTERM", again);
      process.once("SIGINT", again);
      void server.close().then(() => {
        process.off("SIGTERM", again);
        process.off("SIGINT", again);
        logger.log({ level: "info", event: "stopped", message: "Server stopped" });
        logger.flush?.();
        resolve();
      });
    };
    process.on("SIGTERM", onStop);
    process.on("SIGINT", onStop);
    process.on("SIGHUP", onHup);
  });
}
