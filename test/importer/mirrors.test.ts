import { describe, expect, it } from "vitest";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeInstance, runSiAsync } from "../helpers/instance.js";

describe("mirror triggers (server-reference §4.4)", () => {
  it("import-images runs `ssh -i KEY -l USER -p PORT HOST COMMAND` for every mirror, sorted by host", async () => {
    const inst = makeInstance({
      extraConfig: [
        "mirrors = b, a",
        "[mirror_default]",
        "ssh_user = mirror",
        "ssh_key = secret/ssh/mirror",
        "ssh_port = 22",
        "ssh_command = sync-mirror",
        "[mirror_a]",
        "ssh_host = hosta.example.net",
        "[mirror_b]",
        "ssh_host = hostb.example.net",
        "ssh_port = 2222",
        "",
      ].join("\n"),
    });
    // A fake ssh first on PATH records its arguments instead of connecting anywhere.
    const bin = join(inst.base, "bin");
    mkdirSync(bin);
    const record = join(inst.base, "ssh.log");
    writeFileSync(join(bin, "ssh"), `#!/bin/sh\necho "$@" >> '${record}'\nexit 3\n`);
    chmodSync(join(bin, "ssh"), 0o755);
    const r = await runSiAsync(["--config", inst.config, "import-images"], { env: { PATH: `${bin}:${process.env.PATH}` } });
    expect(r.status, r.stdout + r.stderr).toBe(0); // ssh's exit status is ignored, like the reference
    expect(existsSync(record)).toBe(true);
    expect(readFileSync(record, "utf8").trim().split("\n")).toEqual([
      `-i ${inst.base}/secret/ssh/mirror -l mirror -p 22 hosta.example.net sync-mirror`,
      `-i ${inst.base}/secret/ssh/mirror -l mirror -p 2222 hostb.example.net sync-mirror`,
    ]);
  });
});
