/**
 * `si config show` prints every [global] setting the server reads (issue 9: an operator must
 * be able to see whether keyring_auto_renew_days is on), in text as in --json.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, runSi } from "../helpers/instance.js";

function configFile(lines: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "si-config-show-"));
  const file = join(dir, "config");
  writeFileSync(file, ["[global]", `base_path = ${dir}`, ...lines, ""].join("\n"));
  return file;
}

/** Every [global] key src/config/load.ts reads (through int/str/opt/bool, path() or port()). */
function globalKeysReadByTheLoader(): string[] {
  const src = readFileSync(join(REPO, "src/config/load.ts"), "utf8");
  const keys = new Set<string>();
  for (const m of src.matchAll(/(?:\((?:G|"global"), |\bpath\(|\bport\()"([a-z_]+)"/g)) keys.add(m[1]);
  return [...keys].sort();
}

const textLines = (config: string) => {
  const r = runSi(["--config", config, "config", "show"]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split("\n");
};

describe("si config show", () => {
  const every = configFile([
    "gpg_key_path = k",
    "gpg_keyring_path = kr",
    "publish_path = www",
    "state_path = st",
    "public_fqdn = si.example.org",
    "public_http_port = 80",
    "public_https_port = 443",
    "tls_cert = c.pem",
    "tls_key = k.pem",
    "import_schedule = 0 */4 * * *",
    "admin_address = 127.0.0.2",
    "admin_port = 8091",
    "image_signing_expiry_days = 700",
    "device_signing_expiry_days = 20",
    "keyring_auto_renew_days = 45",
    "xz_level = 6",
    "http_timeout = 30",
    "http_retries = 3",
  ]);

  it("lists keyring_auto_renew_days, http_timeout and http_retries with their values", () => {
    const lines = textLines(every);
    expect(lines).toContain("keyring_auto_renew_days: 45");
    expect(lines).toContain("http_timeout: 30");
    expect(lines).toContain("http_retries: 3");
    expect(lines).toContain("image_signing_expiry_days: 700");
  });

  it("says (unset) for the optional ones left out, and shows the defaults of the others", () => {
    const lines = textLines(configFile([]));
    expect(lines).toContain("keyring_auto_renew_days: (unset)");
    expect(lines).toContain("http_timeout: (unset)");
    expect(lines).toContain("http_retries: 2");
    expect(lines).toContain("import_schedule: (unset)");
  });

  it("prints, in text, every setting --json prints, with the same value", () => {
    const r = runSi(["--config", every, "config", "show", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    const lines = textLines(every);
    const scalars = Object.entries(json).filter(([k]) => k !== "mirrors" && k !== "channels");
    expect(scalars.length).toBeGreaterThanOrEqual(20);
    for (const [key, value] of scalars) expect(lines, key).toContain(`${key}: ${String(value)}`);
  });

  it("has a line for every [global] key the config loader reads", () => {
    const keys = globalKeysReadByTheLoader();
    expect(keys).toEqual(expect.arrayContaining(["keyring_auto_renew_days", "gpg_key_path", "public_http_port", "mirrors", "channels"]));
    const lines = textLines(every);
    for (const key of keys)
      expect(
        lines.some((l) => l.startsWith(`${key}:`)),
        key,
      ).toBe(true);
  });
});
