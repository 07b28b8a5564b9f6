/**
 * Runs a command and measures what it costs as a whole process tree: wall time, CPU
 * (user+sys of the command and every child it waited for, from /usr/bin/time) and peak RSS
 * summed over the live tree (sampled from /proc every 50 ms: the walk over /proc costs CPU the
 * measured command would otherwise have on a 2-core machine), so `xz` children count too.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface Cost {
  wallS: number;
  cpuS: number;
  peakRssMB: number;
  exitCode: number;
  /** What the command printed, with `stdout: "capture"`. */
  stdout?: string;
}

function children(): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = map.get(ppid) ?? [];
      list.push(Number(d));
      map.set(ppid, list);
    } catch {
      /* process ended while we looked */
    }
  }
  return map;
}

/** Summed VmRSS (kB) of `root` and its descendants now (the tests' RSS bound uses it too). */
export function treeRssKB(root: number): number {
  const kids = children();
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) total += Number(m[1]);
    } catch {
      /* gone */
    }
    stack.push(...(kids.get(pid) ?? []));
  }
  return total;
}

export interface MeasureOptions {
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** The whole environment instead (e.g. without PYTHONPATH). */
  exactEnv?: NodeJS.ProcessEnv;
  cwd?: string;
  /** "capture" returns stdout in Cost.stdout; stderr is captured with it when `stderr` is "stdout". */
  stdout?: "inherit" | "ignore" | "capture";
  stderr?: "inherit" | "stdout";
}

export async function measure(cmd: string, args: string[], opts: MeasureOptions = {}): Promise<Cost> {
  const timeFile = join(mkdtempSync(join(tmpdir(), "si-bench-")), "time");
  const start = process.hrtime.bigint();
  const capture = opts.stdout === "capture";
  const stdout = opts.stdout === "capture" ? "pipe" : (opts.stdout ?? "ignore");
  const stderr: "inherit" | "pipe" = capture && opts.stderr === "stdout" ? "pipe" : "inherit";
  const child = spawn("/usr/bin/time", ["-o", timeFile, "-f", "%U %S", cmd, ...args], {
    stdio: ["ignore", stdout, stderr],
    env: opts.exactEnv ?? { ...process.env, ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (out += d));
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRssKB(child.pid!));
  }, 50);
  const exitCode: number = await new Promise((res) => child.on("close", (c) => res(c ?? -1)));
  clearInterval(timer);
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const [u, s] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  rmSync(dirname(timeFile), { recursive: true, force: true });
  return { wallS, cpuS: u + s, peakRssMB: peak / 1024, exitCode, ...(opts.stdout === "capture" ? { stdout: out } : {}) };
}

export function table(rows: Record<string, string | number>[]): string {
  const cols = Object.keys(rows[0] ?? {});
  const cell = (v: string | number) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => "| " + vals.map((v, i) => v.padEnd(widths[i])).join(" | ") + " |";
  return [line(cols), line(widths.map((w) => "-".repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join("\n");
}
