/**
 * Strict config (issue 15 item 1): unknown sections and keys are errors naming file, line,
 * section and key, with a did-you-mean when the name is close; `x_` keys and sections are
 * ignored; valid configs (the reference's own example, every setting config.example
 * documents) still load.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { configProblems, loadConfig, parseConfigText } from "../../src/config/load.js";
import { didYouMean, editDistance } from "../../src/config/strict.js";
import { REPO } from "../helpers/instance.js";

const FILE = "/srv/si/etc/config";

/** The messages of every problem `text` has ([] when it loads). */
function problems(text: string): string[] {
  try {
    parseConfigText(text, FILE, {});
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return configProblems(err as ConfigError).map((e) => e.message);
  }
}

const VALID = `[global]
base_path = /srv/si
public_fqdn = si.example.net
channels = devel
[channel_devel]
type = auto
fullcount = 5
files = version
file_version = version
`;

describe("unknown keys and sections (issue 15's typos)", () => {
  it("the valid config the typos start from loads", () => {
    expect(problems(VALID)).toEqual([]);
  });

  it("public_fdqn in [global]", () => {
    expect(problems(VALID.replace("public_fqdn", "public_fdqn"))).toEqual([
      `${FILE}:3: [global] public_fdqn: unknown key; did you mean 'public_fqdn'?`,
    ]);
  });

  it("fulcount in a channel section (it would keep every image)", () => {
    expect(problems(VALID.replace("fullcount", "fulcount"))).toEqual([
      `${FILE}:7: [channel_devel] fulcount: unknown key; did you mean 'fullcount'?`,
    ]);
  });

  it("a [globl] section (base_path would fall back to the working directory)", () => {
    expect(problems(VALID.replace("[global]", "[globl]"))).toEqual([`${FILE}:1: [globl]: unknown section; did you mean 'global'?`]);
  });

  it("a misspelt channel section is answered with the channel section", () => {
    const text = `${VALID}[chanel_stable]\ntype = manual\n`;
    expect(problems(text)).toEqual([`${FILE}:10: [chanel_stable]: unknown section; did you mean 'channel_stable'?`]);
  });

  it("the error is a ConfigError whose message is the one line, when it is the only problem", () => {
    expect(() => parseConfigText(VALID.replace("fullcount", "fulcount"), FILE, {})).toThrow(
      new ConfigError(`${FILE}:7: [channel_devel] fulcount: unknown key; did you mean 'fullcount'?`, "KeyError"),
    );
  });

  it("reports every problem of the file at once, in line order, bad values included", () => {
    const text =
      VALID.replace("public_fqdn", "public_fdqn")
        .replace("[global]", "[global]\nxz_level = high")
        .replace("fullcount = 5", "fulcount = 5\nversionbase = one") + "[globl]\nbase_path = /tmp\n";
    expect(problems(text)).toEqual([
      `${FILE}:2: [global] xz_level: invalid integer 'high'`,
      `${FILE}:4: [global] public_fdqn: unknown key; did you mean 'public_fqdn'?`,
      `${FILE}:8: [channel_devel] fulcount: unknown key; did you mean 'fullcount'?`,
      `${FILE}:9: [channel_devel] versionbase: invalid integer 'one'`,
      `${FILE}:12: [globl]: unknown section; did you mean 'global'?`,
    ]);
  });

  it("says where a key belongs when it is in the wrong section", () => {
    expect(problems(VALID.replace("[channel_devel]", "fullcount = 3\n[channel_devel]"))).toEqual([
      `${FILE}:5: [global] fullcount: unknown key; it belongs in a [channel_<name>] section`,
    ]);
    // ssh_host in [mirror_default] is ignored by the reference: each mirror names its host.
    const mirrors =
      VALID.replace("channels", "mirrors = a\nchannels") +
      "[mirror_default]\nssh_user = m\nssh_key = k\nssh_port = 22\nssh_command = sync\nssh_host = h\n[mirror_a]\nssh_host = a\n";
    expect(problems(mirrors)).toEqual([`${FILE}:16: [mirror_default] ssh_host: unknown key; it belongs in a [mirror_<name>] section`]);
  });

  it("makes no suggestion when nothing is close, and names the escape hatch", () => {
    expect(problems(`${VALID}owner = ops\n`)).toEqual([
      `${FILE}:10: [channel_devel] owner: unknown key (keys read by other tools must start with 'x_')`,
    ]);
    expect(problems(`${VALID}[backup]\n`)).toEqual([
      `${FILE}:10: [backup]: unknown section (sections: global, mirror_default, mirror_<name>, channel_<name>, DEFAULT; 'x_' sections are ignored)`,
    ]);
  });

  it("keys are case-sensitive (configparser keeps case): Publish_Path is not publish_path", () => {
    expect(problems(VALID.replace("base_path", "Base_Path"))).toEqual([
      `${FILE}:2: [global] Base_Path: unknown key; did you mean 'base_path'?`,
    ]);
  });

  it("checks [DEFAULT] options once, where they are written, against every section's keys", () => {
    expect(problems(`[DEFAULT]\nfullcount = 3\n${VALID}`)).toEqual([]);
    expect(problems(`[DEFAULT]\nfulcount = 3\n${VALID}`)).toEqual([
      `${FILE}:2: [DEFAULT] fulcount: unknown key; did you mean 'fullcount'?`,
    ]);
  });

  it("checks channel sections that [global] does not list (yet) too", () => {
    expect(problems(`${VALID}[channel_later]\ntype = auto\n`)).toEqual([]);
    expect(problems(`${VALID}[channel_later]\ntpye = auto\n`)).toEqual([
      `${FILE}:11: [channel_later] tpye: unknown key; did you mean 'type'?`,
    ]);
  });

  it("accepts any file_<entry> key in a channel, listed in files or not", () => {
    expect(problems(`${VALID}file_custom = http;https://ci.example.net/custom.tar.xz\nfile_device,mako = version\n`)).toEqual([]);
  });
});

describe("the x_ escape hatch", () => {
  it("ignores x_ keys in every section, [DEFAULT] included, and whole x_ sections", async () => {
    const text = `[DEFAULT]\nx_note = shared\n${VALID}x_owner = ops-team\n[x_backup]\nhost = b.example.net\nanything goes = yes\n`.replace(
      "[global]",
      "[global]\nx_deployed_by = ansible",
    );
    expect(problems(text)).toEqual([]);
    const conf = parseConfigText(text, FILE, {});
    expect(Object.keys(conf).filter((k) => k.startsWith("x_"))).toEqual([]);
    expect(conf.channels.get("devel")!.fullcount).toBe(5);
  });

  it("is a prefix, not a substring: ax_owner is still unknown", () => {
    expect(problems(`${VALID}ax_owner = ops\n`)).toEqual([
      `${FILE}:10: [channel_devel] ax_owner: unknown key (keys read by other tools must start with 'x_')`,
    ]);
  });
});

describe("valid configs stay valid", () => {
  it("the reference's own example config (server-reference §4.5) has no unknown section or key", () => {
    // Verbatim from the spec, comment annotation dropped. Its known mistakes are all that is
    // reported: a listed channel and mirror without sections, a generator that no longer exists
    // and a channel whose files have no entries.
    const reference = `[global]
base_path = /some/fs/path
channels = trusty, trusty-proposed, trusty-customized
gpg_key_path = secret/gpg/keys/
gpg_keyring_path = secret/gpg/keyrings/
publish_path = www/
state_path = state/
mirrors = a, b
public_fqdn = system-image.example.net
public_http_port = 80
public_https_port = 443

[channel_trusty-proposed]
type = auto
versionbase = 1
fullcount = 20
deltabase = trusty, trusty-proposed
files = ubuntu, device, version
file_ubuntu = cdimage-ubuntu;daily-preinstalled;trusty,import=any
file_device = cdimage-device;daily-preinstalled;trusty,import=any
file_version = version

[channel_trusty-customized]
type = auto
files = ubuntu, device, custom, version
file_ubuntu = system-image;trusty;file=ubuntu
file_custom = http;http://www.example.net/custom/custom.tar.xz;name=custom,monitor=http://www.example.net/custom/build_number

[mirror_default]
ssh_user = mirror
ssh_key = secret/ssh/mirror
ssh_port = 22
ssh_command = sync-mirror

[mirror_a]
ssh_host = a.example.com
`;
    const found = problems(reference);
    expect(found.filter((m) => m.includes("unknown"))).toEqual([]);
    expect(found).toEqual([
      `${FILE}:3: [global] channels: Missing channel section: channel_trusty`,
      `${FILE}:8: [global] mirrors: Missing mirror section: mirror_b`,
      expect.stringMatching(/^\S+:20: \[channel_trusty-proposed\] file_device: Invalid generator: 'cdimage-device'/),
      `${FILE}:25: [channel_trusty-customized] files: Missing file entry: file_device`,
      `${FILE}:25: [channel_trusty-customized] files: Missing file entry: file_version`,
    ]);
    // Corrected the way its own text says, it loads.
    const fixed = reference
      .replace("channels = trusty, ", "channels = ")
      .replace("mirrors = a, b", "mirrors = a")
      .replace("cdimage-device;", "cdimage-device-raw;")
      .replace("files = ubuntu, device, custom, version", "files = ubuntu, custom");
    expect(problems(fixed)).toEqual([]);
  });

  it("etc/config.example loads, and so does every setting it documents, uncommented", async () => {
    const example = join(REPO, "etc/config.example");
    await expect(loadConfig(example, {})).resolves.toBeDefined();
    // `# key = value` and `# [section]` lines are the documented optional settings.
    const text = readFileSync(example, "utf8");
    const uncommented = text.replace(/^# ((?:\[[^\]]+\])|(?:[a-z_]+ = .*))$/gm, "$1");
    expect(uncommented.split("\n").length).toBe(text.split("\n").length);
    const dir = mkdtempSync(join(tmpdir(), "si-strict-"));
    writeFileSync(join(dir, "config"), uncommented);
    expect(uncommented).toMatch(/^\[mirror_default\]$/m);
    await expect(loadConfig(join(dir, "config"), {})).resolves.toBeDefined();
  });

  it("knows every key src/config/load.ts reads, with no list to keep in step", () => {
    // Keys looked up in [global] (through the helpers taking G) and in a channel section.
    const src = readFileSync(join(REPO, "src/config/load.ts"), "utf8");
    const global = new Set([...src.matchAll(/(?:\((?:G|"global"), |\bpath\(|\bport\()"([a-z_]+)"/g)].map((m) => m[1]));
    const channelsMethod = src.slice(src.indexOf("channels(globalMtime"), src.indexOf("fileEntry(sname: string"));
    const channel = new Set([...channelsMethod.matchAll(/\(sname, "([a-z_]+)"/g)].map((m) => m[1]));
    expect([...global]).toEqual(expect.arrayContaining(["public_fqdn", "channels", "mirrors", "xz_level"]));
    expect([...channel]).toEqual(expect.arrayContaining(["type", "fullcount", "files"]));
    // A bad value may be reported (`channels = 1` has no section): only "unknown" matters.
    const unknown = (text: string) => problems(text).filter((m) => m.includes("unknown"));
    for (const key of global) expect(unknown(`[global]\n${key} = 1\n`), key).toEqual([]);
    for (const key of channel) expect(unknown(`[channel_unlisted]\n${key} = 1\n`), key).toEqual([]);
    expect(unknown("[global]\nno_such_key = 1\n[channel_unlisted]\nno_such_key = 1\n")).toHaveLength(2);
  });
});

describe("didYouMean", () => {
  it("counts a swap of two neighbours as one edit", () => {
    expect(editDistance("public_fdqn", "public_fqdn")).toBe(1);
    expect(editDistance("fulcount", "fullcount")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
  });

  it("suggests only close names: about a quarter of the length, at most 3 edits", () => {
    expect(didYouMean("fulcount", ["fullcount", "files", "type"])).toBe("fullcount");
    expect(didYouMean("typ", ["type", "files"])).toBe("type");
    expect(didYouMean("tp", ["type"])).toBeUndefined();
    expect(didYouMean("owner", ["fullcount", "files", "type"])).toBeUndefined();
    expect(didYouMean("PUBLISH_PATH", ["publish_path"])).toBe("publish_path");
  });
});
