/**
 * A real instance for the admin-command tests: temp base dir, test keys, keyrings, and
 * source images made the way an operator's tree holds them (pool tarballs made by GNU tar
 * and xz, signed; a version tarball with its sidecar, made by the version generator), all
 * published through the real CLI.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import { generateFile, makeGeneratorContext } from "../../src/generators/index.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import { makeInstance, REPO, type Instance } from "../helpers/instance.js";

export interface AdminFixture {
  inst: Instance;
  config: Config;
  signer: LocalSigner;
  pub: string;
  /** Runs the CLI and expects exit 0; returns stdout. */
  ok(...args: string[]): string;
}

export async function adminFixture(opts: { extraConfig?: string; keyrings?: boolean } = {}): Promise<AdminFixture> {
  const inst = makeInstance({ extraConfig: opts.extraConfig });
  const config = await loadConfig(inst.config);
  const signer = new LocalSigner(config.gpg_key_path);
  const ok = (...args: string[]) => {
    const r = inst.si(...args);
    expect(r.status, `si ${args.join(" ")}\n${r.stdout}${r.stderr}`).toBe(0);
    return r.stdout;
  };
  if (opts.keyrings) ok("generate-keyrings");
  return { inst, config, signer, pub: config.publish_path, ok };
}

/** A GNU tar + xz archive of `files` (path → content) at `<pub>/<rel>`, signed by image-signing. */
export async function poolTarball(fx: AdminFixture, rel: string, files: Record<string, string>): Promise<string> {
  const src = mkdtempSync(join(tmpdir(), "si-admin-src-"));
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(src, p)), { recursive: true });
    writeFileSync(join(src, p), content);
  }
  const tar = execFileSync(
    "tar",
    ["--format=gnu", "--sort=name", "--owner=0", "--group=0", "--mtime=@1600000000", "-C", src, "-cf", "-", "."],
    {
      maxBuffer: 1 << 26,
    },
  );
  const path = join(fx.pub, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, execFileSync("xz", ["-1", "-c"], { input: tar }));
  await fx.signer.signFile("image-signing", path);
  return path;
}

/**
 * A full image `version` of channel/device as import-images would have made it: `paths`
 * (relative to the tree), then a version tarball whose sidecar holds `detail` + `,version=N`.
 */
export async function publishFull(
  fx: AdminFixture,
  channel: string,
  device: string,
  version: number,
  paths: string[],
  detail: string[],
): Promise<string> {
  const gctx = makeGeneratorContext(fx.config, { signer: fx.signer });
  const env = {
    channel_name: channel,
    device_name: device,
    device: join(fx.pub, channel, device),
    version,
    version_detail: [...detail],
    new_files: paths.map((p) => join(fx.pub, p)),
  };
  const versionFile = await generateFile(gctx, "version", [], env);
  const full = env.version_detail.join(",");
  fx.ok("image", "create", channel, device, String(version), ...paths, versionFile!, "--version-detail", full);
  return full;
}

export const readIndex = (fx: AdminFixture, channel: string, device: string) =>
  JSON.parse(readFileSync(join(fx.pub, channel, device, "index.json"), "utf8")) as IndexDoc;

/** The CLI without blocking this process (for tests that serve HTTP here). */
export function siAsync(inst: Instance, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, "bin/si.js"), "--config", inst.config, ...args], { cwd: REPO });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

/** stderr has exactly one line, the error, and it matches. */
export function expectOneLineError(r: { stderr: string }, expected: string | RegExp): void {
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  if (typeof expected === "string") expect(lines[0]).toBe(`si: error: ${expected}`);
  else expect(lines[0]).toMatch(expected);
}
