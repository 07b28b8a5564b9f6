/**
 * Entry point of a `si serve` worker process (forked by workers.ts with SI_SERVE_WORKER).
 *
 * Deliberately not the CLI: loading every command module pulls in node:repl (the admin
 * shell), and node:repl loads node:domain, which slows every EventEmitter in the process;
 * measured on small JSON files it cost a third of the request rate. A worker loads the
 * config and the server code, nothing else.
 */
import { loadConfig } from "../config/load.js";
import { errorMessage } from "../errors.js";
import { jsonLineLogger } from "./log.js";
import { startServer } from "./start.js";
import { reportWorkerFailure, runAsWorker, type WorkerSpec } from "./workers.js";

async function main(): Promise<void> {
  const logger = jsonLineLogger((lines) => process.stdout.write(lines + "\n"));
  let server;
  try {
    const spec = JSON.parse(process.env.SI_SERVE_WORKER ?? "") as WorkerSpec;
    const config = await loadConfig(spec.configPath);
    server = await startServer(config, { ...spec.options, logger });
  } catch (err) {
    return reportWorkerFailure(errorMessage(err));
  }
  await runAsWorker(server, logger);
}

void main();
