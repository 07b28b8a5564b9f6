/**
 * A throwaway server instance for tests: base dir with etc/config, the cached test keys
 * copied into secret/gpg/keys, and helpers to run the real CLI against it.
 */
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dirname, "../..");
export const TEST_KEYS = join(REPO, "test-artifacts/keys");

export interface Instance {
  base: string;
  config: string;
  keys: string;
  keyrings: string;
  publish: string;
  state: string;
  /** Runs `si --config <config> ...args`; never throws. */
  si(...args: string[]): { status: number; stdout: string; stderr: string };
  /** Like si(), without blocking the event loop (for tests that serve HTTP themselves). */
  siAsync(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }>;
}

export function makeInstance(opts: { extraConfig?: string; withKeys?: boolean } = {}): Instance {
  const base = mkdtempSync(join(tmpdir(), "si-inst-"));
  mkdirSync(join(base, "etc"));
  mkdirSync(join(base, "www"));
  mkdirSync(join(base, "state"));
  const config = join(base, "etc/config");
  writeFileSync(
    config,
    `[global]\nbase_path = ${base}\npublic_fqdn = system-image.example.net\npublic_http_port = 880\npublic_https_port = 8443\n${opts.extraConfig ?? ""}`,
  );
  const keys = join(base, "secret/gpg/keys");
  if (opts.withKeys !== false) cpSync(TEST_KEYS, keys, { recursive: true });
  return {
    base,
    config,
    keys,
    keyrings: join(base, "secret/gpg/keyrings"),
    publish: join(base, "www"),
    state: join(base, "state"),
    si: (...args) => runSi(["--config", config, ...args]),
    siAsync: (...args) => runSiAsync(["--config", config, ...args]),
  };
}

export function runSi(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const r = spawnSync(process.execPath, [join(REPO, "bin/si.js"), ...args], {
    encoding: "utf8",
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, ...opts.env },
    input: opts.input,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function runSiAsync(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(REPO, "bin/si.js"), ...args], {
      cwd: opts.cwd ?? REPO,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}
