import type { Command } from "commander";
import { fileURLToPath } from "node:url";
import { resolve, relative } from "node:path";
import type { CliContext } from "../context.js";
import { UsageError } from "../../errors.js";
import { createLogger } from "../../io/log.js";
import { DEMO_CHANNEL, DEMO_DEVICE, newestDemoVersion, prepareDemo, publishNextBuild } from "../../demo/setup.js";
import { startServer } from "../../server/start.js";
import { jsonLineLogger } from "../../server/log.js";
import { prepareOperations } from "../../dashboard/operations.js";

const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

function port(flag: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`${flag}: expected a port number, got '${v}'`);
    return Number(v);
  };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .description(
      "run the embedded demo (what `npm start` does): make keys, keyrings, a certificate and a demo channel on first run, then serve",
    )
    .option("--root <dir>", "instance directory (default: this checkout)", REPO_ROOT)
    .option("--address <addr>", "address to bind", "127.0.0.1")
    .option("--http-port <port>", "HTTP port", port("--http-port"), 8080)
    .option("--https-port <port>", "HTTPS port", port("--https-port"), 8443)
    .option("--admin-port <port>", "admin dashboard port on 127.0.0.1 (0 = any free port)", port("--admin-port"), 8090)
    .option("--no-serve", "prepare the instance and exit")
    .option("--next-build", "add the next build to the demo's build farm, import it (full image + delta) and exit")
    .action(
      async (opts: {
        root: string;
        address: string;
        httpPort: number;
        httpsPort: number;
        adminPort: number;
        serve: boolean;
        nextBuild?: boolean;
      }) => {
        const root = resolve(opts.root);
        const log = createLogger({ json: false, write: ctx.out });
        const config = await prepareDemo({ root, httpPort: opts.httpPort, httpsPort: opts.httpsPort, log });
        const rel = (p: string) => {
          const r = relative(process.cwd(), p);
          return r === "" ? "." : r.startsWith("..") ? p : r;
        };
        // The command that publishes the next build of this instance, as the operator types it.
        const nextBuild = `npx si demo${root === resolve(REPO_ROOT) ? "" : ` --root ${rel(root)}`} --next-build`;
        if (opts.nextBuild) {
          const build = await publishNextBuild(config, log);
          const version = await newestDemoVersion(config);
          ctx.out(
            `Demo build ${build} published as version ${version} of ${DEMO_CHANNEL}/${DEMO_DEVICE} (a running \`si demo\` serves it now). Next: ${nextBuild}`,
          );
          return;
        }
        if (!opts.serve) return;
        const logger = jsonLineLogger((lines) => ctx.out(lines));
        // The dashboard of `si serve` too (no scheduler: the demo publishes a build when told, --next-build).
        const ops = prepareOperations(config, { logger, schedule: false, adminPort: opts.adminPort });
        const server = await startServer(config, {
          address: opts.address,
          httpPort: opts.httpPort,
          httpsPort: opts.httpsPort,
          logger,
          extraListeners: ops.listener ? [ops.listener] : [],
        });
        ops.setRequestCounts(() => server.requests.snapshot());
        await ops.start(server.urls.admin);
        const host = opts.address === "0.0.0.0" ? "127.0.0.1" : opts.address;
        const newest = await newestDemoVersion(config);
        const baked = config.public_http_port !== String(opts.httpPort) || config.public_https_port !== String(opts.httpsPort);
        ctx.out(
          [
            "",
            "Demo OTA server ready.",
            `  http:  http://${host}:${server.httpPort}/channels.json`,
            `  https: https://${host}:${server.httpsPort}/channels.json  (self-signed: ${rel(config.tls_cert!)})`,
            `  admin dashboard: http://127.0.0.1:${server.ports.admin}/  (metrics: /metrics)`,
            `  channel '${DEMO_CHANNEL}', device '${DEMO_DEVICE}': newest build ${newest}${newest > 1 ? `, with a delta ${newest}<-${newest - 1}` : ""}`,
            `  device trust root: ${rel(`${config.gpg_keyring_path}/archive-master.tar.xz`)}`,
            `     (on the device: /usr/share/system-image/archive-master.tar.xz)`,
            "",
            "Point a device (system-image client) at it with /etc/system-image/config.d/01_channel.ini:",
            "  [service]",
            `  base: ${host}`,
            `  http_port: ${config.public_http_port}`,
            `  https_port: ${config.public_https_port}`,
            `  channel: ${DEMO_CHANNEL}`,
            `  device: ${DEMO_DEVICE}`,
            "  build_number: 0",
            `then run \`system-image-cli --dry-run\` (build 0 gets the full image ${newest}; -b ${newest - 1} the delta).`,
            ...(baked
              ? [
                  `Note: the images were built for ports ${config.public_http_port}/${config.public_https_port} (their channel.ini says so).`,
                ]
              : []),
            `Admin commands on this instance: npx si --config ${rel(config.path)} <command>  (e.g. history, verify-tree, import-images)`,
            `Publish build ${newest + 1} (from the demo's build farm in ${rel(`${config.state_path}/demo-farm`)}): ${nextBuild}`,
            "Ctrl-C stops the server.",
            "",
          ].join("\n"),
        );
        await new Promise<void>((resolveStop) => {
          const stop = () => {
            process.off("SIGINT", stop);
            process.off("SIGTERM", stop);
            void Promise.all([ops.stop(5000), server.close()]).then(() => {
              ops.close();
              resolveStop();
            });
          };
          process.on("SIGINT", stop);
          process.on("SIGTERM", stop);
        });
      },
    );
}
