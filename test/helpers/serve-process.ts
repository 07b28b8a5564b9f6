/**
 * `si serve` as a child process for the scheduler tests: every stdout line parsed as one JSON
 * object (a line that is not JSON fails the test), and a wait for the first line that matches.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { REPO } from "./instance.js";

export interface Serve {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: () => string;
  waitFor(pred: (l: Record<string, unknown>) => boolean, what?: string): Promise<Record<string, unknown>>;
  exit: Promise<number | null>;
}

export function spawnServe(config: string, ...args: string[]): Serve {
  const child = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", config, "serve", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let err = "";
  let buf = "";
  const waiters = new Set<() => void>();
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      // Every line the server writes (scheduler and importer included) must be one JSON object.
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
    for (const w of [...waiters]) w();
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, what = "a matching line") =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = lines.find(pred);
        if (hit) {
          waiters.delete(check);
          return resolve(hit);
        }
        if (child.exitCode !== null) reject(new Error(`si serve exited ${child.exitCode} while waiting for ${what}: ${err}`));
      };
      waiters.add(check);
      child.on("exit", check);
      check();
    });
  return { child, lines, stderr: () => err, waitFor, exit };
}

export function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    })
      .on("error", reject)
      .end();
  });
}
