/**
 * `si serve`: serves the published tree to devices and flashing tools over HTTP and HTTPS
 * until SIGTERM/SIGINT, then stops gracefully (in-flight downloads finish, exit 0).
 * SIGHUP re-reads the TLS certificate and key (after a renewal) without dropping anyone.
 * Logs are JSON lines on stdout, starting with one `listening` line per listener.
 *
 * With `--workers N` (default: one per CPU) the public listeners run in N worker processes
 * and this process supervises them (src/server/workers.ts); with 1 everything runs here.
 * Either way this process alone runs the import scheduler (`import_schedule`, off with
 * `--no-schedule`) and the admin listener on admin_address:admin_port (src/dashboard/).
 */
import type { Command } from "commander";
import { prepareOperations, type Operations } from "../../dashboard/operations.js";
import { ConfigError, UsageError, errorMessage } from "../../errors.js";
import { jsonLineLogger, type ServerLogger } from "../../server/log.js";
import { startListeners } from "../../server/listener.js";
import { publicPorts, startServer, type StartOptions } from "../../server/start.js";
import { readTlsMaterial } from "../../server/tls.js";
import { superviseWorkers, workerCount, type WorkerSpec } from "../../server/workers.js";
import type { Config } from "../../config/types.js";
import type { CliContext } from "../context.js";

interface ServeOptions {
  address: string;
  httpPort?: number | "off";
  httpsPort?: number | "off";
  accessLog: boolean;
  workers: string;
  schedule: boolean;
  adminPort?: number | "off";
}

/** How long in-flight responses may take to finish after SIGTERM. */
const SHUTDOWN_MS = 10_000;

/** `--http-port N`: 0 = any free port, `off` = no listener (commander cannot store null). */
function portOption(flag: string) {
  return (value: string): number | "off" => {
    if (value === "off" || value === "disabled") return "off";
    if (!/^\d+$/.test(value) || Number(value) > 65535)
      throw new UsageError(`${flag}: expected a port number 0-65535 or 'off', got '${value}'`);
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
    .option("--workers <n>", "serving processes: a number, or 'auto' for one per CPU", "auto")
    .option("--no-access-log", "log warnings only, not every request")
    .option("--no-schedule", "do not run import-images on import_schedule")
    .option("--admin-port <port>", "admin dashboard port instead of admin_port (0 = any free port, 'off')", portOption("--admin-port"))
    .action(async (opts: ServeOptions) => {
      const config = await ctx.config();
      const logger = jsonLineLogger((lines) => ctx.out(lines));
      const ops = prepareOperations(config, {
        logger,
        schedule: opts.schedule,
        adminPort: opts.adminPort === "off" ? null : opts.adminPort,
        accessLog: opts.accessLog,
      });
      const options: WorkerSpec["options"] = {
        address: opts.address,
        httpPort: opts.httpPort === "off" ? null : opts.httpPort,
        httpsPort: opts.httpsPort === "off" ? null : opts.httpsPort,
        accessLog: opts.accessLog,
        shutdownTimeoutMs: SHUTDOWN_MS,
      };
      const startOpts: StartOptions = { ...options, logger };
      const workers = workerCount(opts.workers);
      await checkStartable(config, startOpts);
      if (workers === 1) {
        const server = await startServer(config, { ...startOpts, extraListeners: ops.listener ? [ops.listener] : [] });
        ops.setRequestCounts(() => server.requests.snapshot());
        const { admin, ...publicUrls } = server.urls;
        // Signal handlers before "listening" is announced: a SIGINT right after it must stop
        // the server cleanly, not kill it.
        const signalled = untilSignal(
          logger,
          () => stopAll(ops, () => server.close().then(() => true)),
          () => reload(server.reloadTls(), logger),
        );
        announce(config, publicUrls, logger);
        await ops.start(admin);
        return finish(await signalled, ops, logger);
      }
      // The admin listener first: if its port is taken, no worker is started at all.
      const admin = await startListeners(ops.listener ? [ops.listener] : [], SHUTDOWN_MS);
      let supervisor;
      try {
        supervisor = await superviseWorkers(workers, { configPath: config.path, options }, logger);
      } catch (err) {
        await admin.close();
        throw err;
      }
      const sup = supervisor;
      ops.setRequestCounts(() => sup.requestCounts());
      const stop = () => stopAll(ops, () => Promise.all([sup.stop(SHUTDOWN_MS), admin.close()]).then(([ok]) => ok));
      const signalled = untilSignal(logger, stop, () => sup.reloadTls());
      announce(config, sup.urls, logger);
      await ops.start(admin.urls.admin);
      const clean = await Promise.race([signalled, sup.failed.then(stop).then(() => false)]);
      finish(clean, ops, logger);
    });
}

/** Stops the scheduler and the listeners together; resolves with the listeners' outcome. */
async function stopAll(ops: Operations, closeListeners: () => Promise<boolean>): Promise<boolean> {
  const [, listeners] = await Promise.all([ops.stop(SHUTDOWN_MS), closeListeners()]);
  ops.close();
  return listeners;
}

/**
 * Exit status 1 unless the listeners (workers) stopped cleanly. A scheduled import that was
 * still running after the grace period would keep the process alive: exit now, with the
 * status of a requested stop (the kernel releases the global lock, every tree commit is
 * atomic so nothing is half-published, and the run is marked interrupted in the history).
 */
function finish(clean: boolean, ops: Operations, logger: ServerLogger): void {
  if (!clean) process.exitCode = 1;
  if (!ops.abandoned) return;
  logger.flush?.();
  process.exit(clean ? 0 : 1);
}

/** Fails in the primary, with the single-process messages, what every worker would fail on. */
async function checkStartable(config: Config, opts: StartOptions): Promise<void> {
  const ports = publicPorts(config, opts);
  if (ports.http === null && ports.https === null) {
    throw new ConfigError(
      `Cannot serve: public_http_port and public_https_port are both 0 or unset in ${config.path} (use --http-port / --https-port)`,
    );
  }
  if (ports.https !== null) {
    if (!config.tls_cert || !config.tls_key)
      throw new ConfigError(`Cannot serve HTTPS: tls_cert and tls_key must be set in ${config.path}`);
    await readTlsMaterial(config.tls_cert, config.tls_key);
  }
}

function announce(config: Config, urls: Record<string, string>, logger: ServerLogger): void {
  for (const [name, url] of Object.entries(urls)) {
    logger.log({ level: "info", event: "listening", listener: name, url, msg: `Serving ${config.publish_path} on ${url}` });
  }
  logger.flush?.();
}

function reload(done: Promise<void>, logger: ServerLogger): void {
  done.then(
    () => logger.log({ level: "info", event: "tls-reloaded", msg: "Reloaded TLS certificate and key" }),
    (err: unknown) => logger.log({ level: "error", event: "tls-reload-failed", msg: errorMessage(err) }),
  );
}

/**
 * Waits for SIGTERM/SIGINT, then runs `stop` and resolves with its result; SIGHUP runs
 * `onHup`. A second SIGTERM/SIGINT while stopping exits at once with status 1.
 */
function untilSignal(logger: ServerLogger, stop: () => Promise<boolean>, onHup: () => void): Promise<boolean> {
  return new Promise((resolve) => {
    const onStop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", onStop);
      process.off("SIGINT", onStop);
      process.off("SIGHUP", onHup);
      logger.log({ level: "info", event: "stopping", signal, msg: `${signal}: finishing in-flight responses` });
      logger.flush?.();
      const again = () => process.exit(1);
      process.once("SIGTERM", again);
      process.once("SIGINT", again);
      void stop().then((clean) => {
        process.off("SIGTERM", again);
        process.off("SIGINT", again);
        logger.log({ level: "info", event: "stopped", msg: "Server stopped" });
        logger.flush?.();
        resolve(clean);
      });
    };
    process.on("SIGTERM", onStop);
    process.on("SIGINT", onStop);
    process.on("SIGHUP", onHup);
  });
}
