/** `si demo` as a child process, for the tests that drive the demo end to end. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./instance.js";

export interface RunningDemo {
  child: ChildProcess;
  output: () => string;
}

/** Starts `si demo --root ROOT` on the given ports and resolves once it says it is ready. */
export function startDemo(root: string, http: number, https: number): Promise<RunningDemo> {
  const args = ["demo", "--root", root, "--http-port", String(http), "--https-port", String(https), "--admin-port", "0"];
  const child = spawn(process.execPath, [join(REPO, "bin/si.js"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (out.includes("Demo OTA server ready.")) {
        clearInterval(timer);
        resolve({ child, output: () => out });
      }
    }, 50);
    child.on("exit", (code) => {
      clearInterval(timer);
      reject(new Error(`si demo exited with ${code}:\n${out}`));
    });
  });
}

/** SIGTERM, then the exit status. */
export function stopDemo(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.on("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}
