/**
 * Issue 14.3: Prometheus scrapes an admin listener that has `admin_token_file`, with the
 * scrape_config `authorization` block documented in the README (credentials_file = the same
 * token file). A real Prometheus (Debian package `prometheus`) scrapes a real `si serve`; a
 * job without the block is refused (401), so the check can fail.
 */
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { spawnServe, get } from "../helpers/serve-process.js";
import { keyringInstance } from "./keyring-instance.js";
import { readKeyringTarball } from "../../src/pgp/keyring.js";

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Target {
  labels: { job: string };
  health: string;
  lastError: string;
}

describe("Prometheus scraping with admin_token_file", () => {
  it("the documented authorization block scrapes /metrics; no block gets 401", async () => {
    const which = spawnSync("prometheus", ["--version"], { encoding: "utf8" });
    expect(which.error, "prometheus is not installed (apt-get install prometheus)").toBeUndefined();

    const { inst } = await keyringInstance({ extraConfig: ["admin_token_file = secret/admin-token"] });
    const tokenFile = join(inst.base, "secret/admin-token");
    writeFileSync(tokenFile, "prometheus-scrape-token-0123456789\n", { mode: 0o600 });
    const s = spawnServe(
      inst.config,
      "--address",
      "127.0.0.1",
      "--http-port",
      "0",
      "--https-port",
      "off",
      "--admin-port",
      "0",
      "--workers",
      "1",
      "--no-schedule",
    );
    const promDir = join(inst.base, "prometheus");
    mkdirSync(promDir);
    let prom: ReturnType<typeof spawn> | undefined;
    try {
      const line = await s.waitFor((l) => l.event === "admin-listening", "the admin listener");
      const target = new URL(String(line.url)).host;
      // The block README (admin listener) documents, verbatim apart from paths and ports.
      writeFileSync(
        join(promDir, "prometheus.yml"),
        `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: system-image
    authorization:
      type: Bearer
      credentials_file: ${tokenFile}
    static_configs:
      - targets: ["${target}"]
  - job_name: no-token
    static_configs:
      - targets: ["${target}"]
`,
      );
      const web = await freePort();
      prom = spawn(
        "prometheus",
        [
          `--config.file=${join(promDir, "prometheus.yml")}`,
          `--storage.tsdb.path=${join(promDir, "data")}`,
          `--web.listen-address=127.0.0.1:${web}`,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      let promLog = "";
      prom.stderr!.setEncoding("utf8").on("data", (c: string) => (promLog += c));

      // Until both jobs have been scraped once (Prometheus reports "unknown" before that).
      let targets: Target[] = [];
      for (let i = 0; i < 600; i++) {
        const r = await get(`http://127.0.0.1:${web}/api/v1/targets`).catch(() => null);
        if (r?.status === 200) {
          targets = (JSON.parse(r.body) as { data: { activeTargets: Target[] } }).data.activeTargets;
          if (targets.length === 2 && targets.every((t) => t.health !== "unknown")) break;
        }
        await new Promise((res) => setTimeout(res, 100));
      }
      const byJob = Object.fromEntries(targets.map((t) => [t.labels.job, t]));
      expect(byJob["system-image"], promLog.slice(-2000)).toMatchObject({ health: "up", lastError: "" });
      expect(byJob["no-token"]).toMatchObject({ health: "down", lastError: expect.stringContaining("401") as string });

      // What it stored is what the keyring says.
      const { meta } = await readKeyringTarball(join(inst.publish, "gpg/image-signing.tar.xz"));
      const q = encodeURIComponent('si_keyring_expiry_timestamp_seconds{keyring="gpg/image-signing.tar.xz"}');
      const r = await get(`http://127.0.0.1:${web}/api/v1/query?query=${q}`);
      const result = (JSON.parse(r.body) as { data: { result: { value: [number, string] }[] } }).data.result;
      expect(result).toHaveLength(1);
      expect(Number(result[0].value[1])).toBe(meta.expiry);
    } finally {
      prom?.kill("SIGKILL");
      s.child.kill("SIGKILL");
    }
  });
});
