/**
 * `si config check` (issue 15 item 1): validates a config for the CI of a config repository,
 * listing every problem with exit 1, or one OK line with exit 0, and touches nothing: no
 * directory, key, lock or state file appears. Every other command refuses the same typos.
 */
import { mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, runSi } from "../helpers/instance.js";

/** An instance directory holding only etc/config (`body` after [global]'s base_path). */
function instance(body: string): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "si-config-check-"));
  mkdirSync(join(dir, "etc"));
  const config = join(dir, "etc/config");
  writeFileSync(config, `[global]\nbase_path = ${dir}\n${body}`);
  return { dir, config };
}

/** Every path under `dir` with its size and mtime, so any created or changed file shows. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      out.push(`${relative(dir, p)} ${st.isDirectory() ? "dir" : st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

const TYPOS = `public_fdqn = si.example.net
channels = devel
[channel_devel]
type = auto
fulcount = 3
[globl]
publish_path = /elsewhere/www
`;

describe("si config check", () => {
  it("lists every problem of the issue's typos, one `si: error: file:line:` line each, exit 1", () => {
    const { config } = instance(TYPOS);
    const r = runSi(["--config", config, "config", "check"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      [
        `si: error: ${config}:3: [global] public_fdqn: unknown key; did you mean 'public_fqdn'?`,
        `si: error: ${config}:7: [channel_devel] fulcount: unknown key; did you mean 'fullcount'?`,
        `si: error: ${config}:8: [globl]: unknown section; did you mean 'global'?`,
        "",
      ].join("\n"),
    );
  });

  it("takes --config after the subcommand too", () => {
    const { config } = instance(TYPOS);
    const r = runSi(["config", "check", "--config", config]);
    expect(r.status).toBe(1);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(3);
  });

  it("passes etc/config.example with one OK line", () => {
    const example = join(REPO, "etc/config.example");
    const r = runSi(["config", "check", "--config", example]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${example.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: OK \\(\\d+ channels?, \\d+ mirrors?\\)\\n$`));
  });

  it("accepts x_ keys and sections", () => {
    const { config } = instance("x_owner = ops-team\nchannels = devel\n[channel_devel]\nx_ticket = OPS-12\n[x_backup]\nhost = b\n");
    const r = runSi(["--config", config, "config", "check"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(`${config}: OK (1 channel, 0 mirrors)\n`);
  });

  it("checks import_schedule as si serve would", () => {
    const { config } = instance("import_schedule = 0 */4 * *\n");
    const r = runSi(["--config", config, "config", "check"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^si: error: Invalid import_schedule '0 \*\/4 \* \*' in .*config: .*\n$/);
  });

  it("says so when the file does not exist", () => {
    const dir = mkdtempSync(join(tmpdir(), "si-config-check-"));
    const r = runSi(["--config", join(dir, "nope"), "config", "check"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`si: error: Configuration file doesn't exist: ${join(dir, "nope")}\n`);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("creates nothing: no www/, state/, secret/, lock or key, valid config or not", () => {
    const valid = instance(
      "public_fqdn = si.example.net\nkeyring_auto_renew_days = 30\nimport_schedule = 0 */4 * * *\nchannels = devel\n[channel_devel]\ntype = auto\nfiles = version\nfile_version = version\n",
    );
    const broken = instance(TYPOS);
    for (const { dir } of [valid, broken]) {
      const before = listing(dir);
      expect(before).toEqual([expect.stringMatching(/^etc dir /), expect.stringMatching(/^etc\/config \d+ /)]);
      // Default config location ($SYSTEM_IMAGE_ROOT/etc/config), run from inside the instance.
      const r = runSi(["config", "check"], { cwd: dir, env: { SYSTEM_IMAGE_ROOT: dir, SI_CONFIG: undefined } });
      expect(r.status).toBe(dir === valid.dir ? 0 : 1);
      expect(listing(dir)).toEqual(before);
    }
  });
});

describe("every command refuses the typos", () => {
  it("si channel list stops at a [globl] section instead of listing another tree", () => {
    const { config } = instance("[globl]\nbase_path = /srv/elsewhere\n");
    const r = runSi(["--config", config, "channel", "list"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`si: error: ${config}:3: [globl]: unknown section; did you mean 'global'?`);
  });
});
