/**
 * The config of issue 16's push mirrors and issue 17's rollouts: what an operator writes in
 * etc/config and what the loader makes of it, including the mistakes it must refuse with the
 * file, line, section and key.
 */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { configProblems, parseConfigText } from "../../src/config/load.js";
import { formatRolloutSteps, parseRolloutSteps } from "../../src/model/rollout-steps.js";

const FILE = "/srv/si/etc/config";
const base = (mirrors: string, sections: string) => `[global]\nbase_path = /srv/si\nmirrors = ${mirrors}\n${sections}`;

function problems(text: string): string[] {
  try {
    parseConfigText(text, FILE, {});
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return configProblems(err as ConfigError).map((e) => e.message);
  }
}

describe("mirror types", () => {
  it("reads rsync and rclone mirrors without a [mirror_default] section", () => {
    const conf = parseConfigText(
      base(
        "a, b",
        "[mirror_a]\ntype = rsync\ntarget = si@m1.example:/srv/www\nssh_key = secret/mirror_key\nssh_port = 2222\nssh_known_hosts = etc/known_hosts\nurl = https://m1.example/system-image\npurge_command = /usr/local/bin/purge --quiet\n" +
          "[mirror_b]\ntype = rclone\nremote = s3:bucket/tree\nrclone_config = etc/rclone.conf\n",
      ),
      FILE,
      {},
    );
    expect(conf.mirrors.a).toEqual({
      name: "a",
      type: "rsync",
      target: "si@m1.example:/srv/www",
      ssh_key: "/srv/si/secret/mirror_key",
      ssh_port: 2222,
      ssh_known_hosts: "/srv/si/etc/known_hosts",
      url: "https://m1.example/system-image/",
      purge_command: ["/usr/local/bin/purge", "--quiet"],
    });
    expect(conf.mirrors.b).toEqual({ name: "b", type: "rclone", remote: "s3:bucket/tree", rclone_config: "/srv/si/etc/rclone.conf" });
    expect(conf.mirror_verify).toBe(false);
  });

  it("keeps reference configs as trigger mirrors (type absent)", () => {
    const conf = parseConfigText(
      base("a", "[mirror_default]\nssh_user = u\nssh_key = k\nssh_port = 22\nssh_command = pull\n[mirror_a]\nssh_host = h\n"),
      FILE,
      {},
    );
    expect(conf.mirrors.a).toMatchObject({ type: "trigger", ssh_host: "h", ssh_command: "pull", ssh_key: "/srv/si/k" });
  });

  it("refuses a key of another type, an unknown type, a missing target and an option-like remote, naming the line", () => {
    expect(problems(base("a", "[mirror_a]\ntype = rsync\ntarget = h:/p\nremote = x:y\n"))).toEqual([
      `${FILE}:7: [mirror_a] remote: only a 'type = rclone' mirror reads it (this one is 'rsync')`,
    ]);
    expect(problems(base("a", "[mirror_a]\ntype = ftp\n"))).toEqual([
      `${FILE}:5: [mirror_a] type: must be 'trigger', 'rsync' or 'rclone', got 'ftp'`,
    ]);
    expect(problems(base("a", "[mirror_a]\ntype = rsync\n"))).toEqual([`${FILE}:4: Missing key in mirror_a: target (user@host:/path)`]);
    expect(problems(base("a", "[mirror_a]\ntype = rclone\nremote = --config=/etc/shadow\n"))).toEqual([
      `${FILE}:6: [mirror_a] remote: must not start with '-'`,
    ]);
    expect(problems(base("a", "[mirror_a]\ntype = rclone\nremote = /srv/copy\nurl = ftp://x/\n"))).toEqual([
      `${FILE}:7: [mirror_a] url: must be an http(s) URL with no query, got 'ftp://x/'`,
    ]);
    expect(problems(base("a", "[mirror_a]\ntype = rclone\nremote = /srv/copy\nurl = https://cdn:s3cret@m.example/\n"))).toEqual([
      `${FILE}:7: [mirror_a] url: must not carry a user or password (it is logged and passed to purge_command)`,
    ]);
  });

  it("still requires [mirror_default] when a trigger mirror is listed", () => {
    expect(problems(base("a, b", "[mirror_a]\ntype = rclone\nremote = /x\n[mirror_b]\nssh_host = h\n"))).toEqual([
      `${FILE}:3: [global] mirrors: Missing mirror_default section.`,
    ]);
  });
});

describe("channel rollouts", () => {
  const channel = (keys: string) => `[global]\nchannels = c\n[channel_c]\n${keys}`;

  it("reads the steps and the pause rule, with defaults", () => {
    const conf = parseConfigText(channel("rollout = 5%@0h, 25%@24h, 100%@3d\nrollout_floor = 80\n"), FILE, {});
    expect(conf.channels.get("c")).toMatchObject({
      rollout: [
        { percentage: 5, afterHours: 0 },
        { percentage: 25, afterHours: 24 },
        { percentage: 100, afterHours: 72 },
      ],
      rollout_floor: 80,
      rollout_grace_hours: 2,
      rollout_min_downloads: 20,
    });
    expect(parseConfigText(channel(""), FILE, {}).channels.get("c")?.rollout).toBeUndefined();
  });

  it("refuses steps that would take the image away from a device that saw it", () => {
    expect(problems(channel("rollout = 25%@0h, 5%@24h, 100%@72h\n"))).toEqual([
      `${FILE}:4: [channel_c] rollout: step '5%@24h': percentages must rise (25% before it)`,
    ]);
    expect(() => parseRolloutSteps("5%@1h, 100%@2h")).toThrow("the first step must start at 0h");
    expect(() => parseRolloutSteps("5%@0h, 50%@24h")).toThrow("the last step must be 100%");
    expect(() => parseRolloutSteps("5%@0h, 50%@24h, 100%@12h")).toThrow("times must rise");
    expect(() => parseRolloutSteps("5 percent")).toThrow("is not PERCENT%@TIME");
  });

  it("formats what it parses", () => {
    const steps = parseRolloutSteps("5%@0h,25%@90m, 100%@2d");
    expect(formatRolloutSteps(steps)).toBe("5%@0h, 25%@1.5h, 100%@48h");
    expect(parseRolloutSteps(formatRolloutSteps(steps))).toEqual(steps);
  });
});
