/**
 * Serving from several processes (`si serve --workers N`), as nginx runs one worker per core.
 *
 * One Node process tops out at one core, which on small JSON files is about a third of what
 * nginx does with its workers; N worker processes share the listening sockets through
 * node:cluster (the primary accepts and hands connections out round-robin). The primary
 * serves nothing itself: it starts the workers, prints the URLs, restarts a worker that
 * dies, and on SIGTERM/SIGINT asks every worker to finish its in-flight responses and exit.
 * It is also where single-instance duties (a scheduler, an admin listener) belong.
 */
import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { addCounts, type CountsSnapshot, type RequestCounts } from "./request-counts.js";
import { SiError, UsageError } from "../errors.js";
import type { ServerLogger } from "./log.js";
import type { StartOptions } from "./start.js";

/** What a worker needs to start the same server (passed as JSON in SI_SERVE_WORKER). */
export interface WorkerSpec {
  configPath: string;
  options: Pick<StartOptions, "address" | "httpPort" | "httpsPort" | "accessLog" | "shutdownTimeoutMs">;
}

/** Messages between primary and workers (IPC), tagged so nothing else is mistaken for them. */
type ToWorker = { si: "stop" } | { si: "reload-tls" } | { si: "counts" };
type FromWorker =
  | { si: "ready"; urls: Record<string, string> }
  | { si: "failed"; message: string }
  | { si: "tls-reloaded"; error?: string }
  | { si: "counts"; counts: CountsSnapshot };

/** glibc's default mmap threshold, made fixed for workers (see superviseWorkers). */
const MMAP_THRESHOLD = 128 * 1024;

/** A worker sends its request counts this often when they changed (and when asked, and on exit). */
const COUNTS_PUSH_MS = 5_000;

/** `--workers auto|N` → process count (auto: one per available CPU). */
export function workerCount(value: string): number {
  if (value === "auto") return availableParallelism();
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 256) {
    throw new UsageError(`--workers: expected 'auto' or a number 1-256, got '${value}'`);
  }
  return Number(value);
}

export interface Supervisor {
  /** URLs of the public listeners, as the first worker reported them. */
  urls: Record<string, string>;
  /** Asks every worker to re-read the TLS files. */
  reloadTls(): void;
  /**
   * Request counts of all workers, dead ones included (for /metrics): asks each live worker
   * for a fresh snapshot and waits up to `timeoutMs` for the answers (else uses the last one).
   */
  requestCounts(timeoutMs?: number): Promise<CountsSnapshot>;
  /** Graceful stop; resolves true when every worker exited with status 0. */
  stop(timeoutMs: number): Promise<boolean>;
  /** Resolves (false) if the workers keep crashing and the supervisor gave up. */
  failed: Promise<false>;
}

const CRASH_WINDOW_MS = 60_000;
const CRASH_LIMIT = 5;

/** Forks `count` workers (worker-main.js) and waits until all of them listen. */
export async function superviseWorkers(count: number, spec: WorkerSpec, logger: ServerLogger): Promise<Supervisor> {
  cluster.setupPrimary({ exec: fileURLToPath(new URL("./worker-main.js", import.meta.url)), args: [] });
  // glibc raises its mmap threshold each time a large block is freed, after which large
  // chunks (file-stream.ts) come from the heap and stay there once freed; a fixed threshold
  // (its default, 128 KiB) gives them back to the kernel when the connections that used them
  // have gone (reclaim.ts). 16 KiB, to return small chunks too, cost 25 % more CPU per GB
  // sent. Ignored by other C libraries.
  const env = {
    SI_SERVE_WORKER: JSON.stringify(spec),
    MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? String(MMAP_THRESHOLD),
  };
  let stopping = false;
  let giveUp: (v: false) => void = () => undefined;
  const failed = new Promise<false>((resolve) => (giveUp = resolve));
  const crashes: number[] = [];
  const live = new Set<Worker>();
  let urls: Record<string, string> = {};
  // Latest counts per worker; those of exited workers are folded into `retired`.
  const counts = new Map<Worker, CountsSnapshot>();
  const countWaiters = new Map<Worker, () => void>();
  let retired: CountsSnapshot = {};

  const fork = (replacement = false) =>
    new Promise<void>((resolve, reject) => {
      const worker = cluster.fork(env);
      live.add(worker);
      let ready = false;
      let failure: string | undefined;
      worker.on("message", (m: FromWorker) => {
        if (m?.si === "failed") failure = m.message;
        if (m?.si === "ready") {
          ready = true;
          if (Object.keys(urls).length === 0) urls = m.urls;
          // A stop sent before the worker listened for messages was lost: repeat it.
          if (stopping) worker.send({ si: "stop" } satisfies ToWorker);
          else if (replacement)
            logger.log({ level: "info", event: "worker-ready", worker: worker.process.pid, msg: "Replacement worker serving" });
          resolve();
        } else if (m?.si === "counts") {
          counts.set(worker, m.counts);
          countWaiters.get(worker)?.();
        } else if (m?.si === "tls-reloaded") {
          const pid = worker.process.pid;
          if (m.error) logger.log({ level: "error", event: "tls-reload-failed", worker: pid, msg: m.error });
          else logger.log({ level: "info", event: "tls-reloaded", worker: pid, msg: "Reloaded TLS certificate and key" });
        }
      });
      worker.on("exit", (code, signal) => {
        live.delete(worker);
        retired = addCounts(retired, counts.get(worker) ?? {});
        counts.delete(worker);
        countWaiters.get(worker)?.();
        if (!ready) {
          return reject(
            new SiError(failure ?? `Cannot start serve worker ${worker.process.pid}: it exited with ${signal ?? `status ${code}`}`),
          );
        }
        if (stopping) return;
        logger.log({
          level: "error",
          event: "worker-exit",
          worker: worker.process.pid,
          code,
          signal,
          msg: "Serve worker died; starting another",
        });
        const now = Date.now();
        crashes.push(now);
        while (crashes.length > 0 && crashes[0] < now - CRASH_WINDOW_MS) crashes.shift();
        if (crashes.length >= CRASH_LIMIT) {
          logger.log({ level: "error", event: "workers-crashing", msg: `${CRASH_LIMIT} worker deaths within a minute: giving up` });
          return giveUp(false);
        }
        fork(true).catch((err: unknown) => {
          logger.log({ level: "error", event: "worker-start-failed", msg: String(err) });
          giveUp(false);
        });
      });
    });

  const send = (m: ToWorker) => {
    for (const w of live) {
      try {
        if (w.isConnected()) w.send(m);
      } catch {
        /* exiting already */
      }
    }
  };

  const stop = async (timeoutMs: number): Promise<boolean> => {
    stopping = true;
    const exits = [...live].map(
      (w) =>
        new Promise<boolean>((resolve) => {
          if (w.isDead()) return resolve(w.process.exitCode === 0);
          w.once("exit", (code) => resolve(code === 0));
        }),
    );
    send({ si: "stop" });
    // Workers cut their own connections after timeoutMs; this only catches a hung worker.
    const kill = setTimeout(() => {
      for (const w of live) w.process.kill("SIGKILL");
    }, timeoutMs + 5_000);
    const results = await Promise.all(exits);
    clearTimeout(kill);
    return results.every(Boolean);
  };

  try {
    await Promise.all(Array.from({ length: count }, () => fork()));
  } catch (err) {
    await stop(1_000);
    throw err;
  }
  const requestCounts = async (timeoutMs = 1_000): Promise<CountsSnapshot> => {
    const asked = [...live].filter((w) => w.isConnected());
    await Promise.all(
      asked.map(
        (w) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(done, timeoutMs);
            function done() {
              clearTimeout(timer);
              countWaiters.delete(w);
              resolve();
            }
            countWaiters.set(w, done);
            try {
              w.send({ si: "counts" } satisfies ToWorker);
            } catch {
              done();
            }
          }),
      ),
    );
    return addCounts(retired, ...counts.values());
  };

  return { urls, reloadTls: () => send({ si: "reload-tls" }), requestCounts, stop, failed };
}

/**
 * Worker side of a failed start: the primary reports the message once (not every worker);
 * this process ends with status 1.
 */
export function reportWorkerFailure(message: string): void {
  toPrimary({ si: "failed", message });
  process.exitCode = 1;
  cluster.worker?.disconnect();
}

/**
 * Worker side: reports readiness, then stops on the primary's request or on a signal (the
 * whole process group gets SIGINT on Ctrl-C, and systemd signals every process of the unit).
 */
export function runAsWorker(
  server: { urls: Record<string, string>; close(): Promise<void>; reloadTls(): Promise<void>; requests?: RequestCounts },
  logger: ServerLogger,
): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    let sent = -1;
    const sendCounts = (force: boolean) => {
      const r = server.requests;
      if (!r || !process.connected || (!force && r.version === sent)) return;
      sent = r.version;
      toPrimary({ si: "counts", counts: r.snapshot() });
    };
    // Pushed now and then so the counts of a worker that dies are not all lost.
    const push = setInterval(() => sendCounts(false), COUNTS_PUSH_MS);
    push.unref();
    const stop = () => {
      if (stopping) return;
      stopping = true;
      clearInterval(push);
      void server.close().then(() => {
        sendCounts(false);
        logger.flush?.();
        // cluster's own disconnect marks the exit as intended (a bare process.disconnect()
        // makes node:cluster exit(0) at once); the process then ends when idle.
        cluster.worker?.disconnect();
        resolve();
      });
    };
    process.on("message", (m: ToWorker) => {
      if (m?.si === "stop") stop();
      else if (m?.si === "counts") sendCounts(true);
      else if (m?.si === "reload-tls") {
        server.reloadTls().then(
          () => toPrimary({ si: "tls-reloaded" }),
          (err: unknown) => toPrimary({ si: "tls-reloaded", error: String(err) }),
        );
      }
    });
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    // The primary re-reads certificates for everyone; a SIGHUP to the group must not kill us.
    process.on("SIGHUP", () => undefined);
    // Without a primary there is nobody to hand connections to us: stop.
    process.on("disconnect", stop);
    toPrimary({ si: "ready", urls: server.urls });
  });
}

/**
 * Sends to the primary unless it has gone. A stop can disconnect this worker while a TLS
 * reload or a counts push is still under way; Node reports a send on a closed channel as an
 * 'error' event on `process`, which unhandled would end the worker with status 1 and turn a
 * clean `systemctl stop` (right after a certbot reload) into a failure. The callback takes it.
 */
function toPrimary(message: FromWorker): void {
  if (!process.connected || !process.send) return;
  process.send(message, undefined, undefined, () => undefined);
}
