/**
 * Pushes wired into the commands: import-images and admin commands push to rclone mirrors
 * (plain local directories here) after the lock is released; `si mirror push` by hand (exit 1
 * when a push failed), `si mirror status`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { addMirrors } from "../helpers/mirror-servers.js";
import { runSiAsync } from "../helpers/instance.js";
import { makeDeviceTree, serveInputs, standardInstance, tarXz, tmp, type InputServer } from "../importer/fixtures.js";

/** Every file under dir (relative), hidden ones left out. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

describe("si mirror, and pushes after import-images and admin commands", () => {
  let farm: InputServer;
  beforeAll(async () => {
    farm = await serveInputs();
    const src = tmp("si-mirror-cli-inputs-");
    makeDeviceTree(join(src, "device"));
    farm.routes.set("/device.tar.xz", { file: tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"]) });
    farm.routes.set("/device.version", { body: "1" });
  });
  afterAll(() => farm?.close());

  it("import-images pushes the new tree; status shows it; a broken mirror fails `si mirror push` only", async () => {
    const inst = await standardInstance(farm.url, { files: ["device", "version"] });
    const good = join(tmp("si-mirror-cli-good-"), "mirror");
    addMirrors(inst.config, {
      good: { type: "rclone", remote: good, url: "https://mirror.example.net/" },
      bad: { type: "rclone", remote: "/proc/no-such-dir/mirror" },
    });
    const r = await runSiAsync(["--config", inst.config, "import-images", "--json-log"]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.mirror);
    expect(lines.filter((l) => l.mirror === "good" && l.phase).map((l) => l.phase)).toEqual([
      "files",
      "index-copies",
      "indexes",
      "keyrings",
      "channels",
    ]);
    expect(lines.find((l) => l.mirror === "bad" && !l.phase)).toMatchObject({ level: "warn", outcome: "failed" });
    // The mirror is the published tree, byte for byte.
    expect(files(good)).toEqual(files(inst.publish));
    for (const f of files(inst.publish)) expect(readFileSync(join(good, f)).equals(readFileSync(join(inst.publish, f))), f).toBe(true);

    const status = await runSiAsync(["--config", inst.config, "mirror", "status"]);
    expect(status.status, status.stderr).toBe(0);
    const byMirror = Object.fromEntries(
      status.stdout
        .trim()
        .split("\n")
        .map((l) => [l.split(" ")[0], l]),
    );
    expect(byMirror.good).toMatch(
      /^good \(rclone \/.*\): last push \S+ \(import\): ok, \d+ files, .*; last success \S+; lag 0 s, no removals pending$/,
    );
    expect(byMirror.bad).toMatch(
      /^bad \(rclone \/proc\/no-such-dir\/mirror\): last push \S+ \(import\): failed, 0 files, 0 B — rclone exited with status \d+: .*; last success never; lag \d+ s/,
    );

    const json = JSON.parse((await runSiAsync(["--config", inst.config, "mirror", "status", "--json"])).stdout) as {
      mirror: string;
      lag_seconds: number;
    }[];
    expect(json.map((j) => [j.mirror, j.lag_seconds === 0])).toEqual([
      ["bad", false],
      ["good", true],
    ]);

    // By hand: the good one has nothing new; the bad one still fails, so the exit status is 1.
    const one = await runSiAsync(["--config", inst.config, "mirror", "push", "good"]);
    expect(one.status, one.stdout + one.stderr).toBe(0);
    const both = await runSiAsync(["--config", inst.config, "mirror", "push"]);
    expect(both.status).toBe(1);
    expect(both.stdout + both.stderr).toMatch(/mirror bad \(rclone\) push failed after/);
    const unknown = await runSiAsync(["--config", inst.config, "mirror", "push", "nope"]);
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain("Cannot push to mirror 'nope': no such mirror in the config");

    // An admin command pushes too (trigger "admin"): the new channel's channels.json arrives.
    const before = statSync(join(good, "channels.json")).mtimeMs;
    const admin = await runSiAsync(["--config", inst.config, "channel", "create", "extra"]);
    expect(admin.status, admin.stdout + admin.stderr).toBe(0);
    expect(statSync(join(good, "channels.json")).mtimeMs).not.toBe(before);
    expect(JSON.parse(readFileSync(join(good, "channels.json"), "utf8"))).toHaveProperty("extra");
    const after = JSON.parse((await runSiAsync(["--config", inst.config, "mirror", "status", "--json"])).stdout) as {
      mirror: string;
      last_push: { trigger: string };
    }[];
    expect(after.find((j) => j.mirror === "good")?.last_push.trigger).toBe("admin");

    // The pushes are in the history: one line per push with its phases, newest first.
    const hist = await runSiAsync(["--config", inst.config, "history", "--mirrors"]);
    expect(hist.status, hist.stderr).toBe(0);
    const pushLines = hist.stdout.split("\n").filter((l) => / mirror good /.test(l));
    expect(pushLines[0]).toMatch(/^\S+ mirror good \(admin\): ok, \d+ files, .*, \d+\.\d s$/);
    expect(pushLines.at(-1)).toMatch(/^\S+ mirror good \(import\): ok, \d+ files/);
    expect(hist.stdout).toMatch(/^ {2}channels: 2 files, .* s$/m);
    expect(hist.stdout).toMatch(/mirror bad \(import\): failed, 0 files, 0 B, .* — rclone exited with status/);
    const runs = await runSiAsync(["--config", inst.config, "history"]);
    // Both mirrors were pushed at once by the last command: either may be the newest.
    expect(runs.stdout).toMatch(/\(mirror pushes: si history --mirrors; last \S+, (ok|failed)\)/);
  });
});
