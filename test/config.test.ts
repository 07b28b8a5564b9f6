/**
 * etc/config reader: the reference's test_config (server-reference §10.1) ported case by
 * case, plus configparser semantics (checked against python3's own configparser), the
 * stricter errors with file:line, unpackArguments (§5.2), mirrors and the `si config` CLI.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { ConfigError } from "../src/errors.js";
import { parseIni } from "../src/config/ini.js";
import { defaultConfigPath, loadConfig, parseConfigText } from "../src/config/load.js";
import { mirrorCommands, runSsh, syncMirrors } from "../src/config/mirrors.js";
import { unpackArguments } from "../src/config/arguments.js";

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "si-config-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
/** Writes `text` to a fresh file in the temp dir and returns its path. */
function write(text: string): string {
  const p = join(tmp, `config-${++counter}`);
  writeFileSync(p, text);
  return p;
}

/** Loads text from a temp file with an empty environment (no $SYSTEM_IMAGE_ROOT). */
function load(text: string) {
  return loadConfig(write(text), {});
}

/** The ConfigError `fn` throws (fails the test if it throws nothing or something else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const MIRRORS_AB = (base: string) => `[global]
base_path = ${base}
mirrors = a, b

[mirror_default]
ssh_user = user
ssh_key = key
ssh_port = 22
ssh_command = command

[mirror_a]
ssh_host = hosta

[mirror_b]
ssh_host = hostb
`;

describe("reference test_config (§10.1)", () => {
  it("syncs a complete two-mirror config with absolute keys, in host order", async () => {
    const conf = await load(MIRRORS_AB(tmp));
    const calls: string[][] = [];
    await syncMirrors(conf, {
      run: async (argv) => {
        calls.push(argv);
      },
    });
    const key = join(tmp, "key");
    // Plus BatchMode and ConnectTimeout (issue 15 item 4): no prompt, no endless connect.
    const ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"];
    expect(calls).toEqual([
      [...ssh, "-i", key, "-l", "user", "-p", "22", "hosta", "command"],
      [...ssh, "-i", key, "-l", "user", "-p", "22", "hostb", "command"],
    ]);
  });

  it("refuses a file without a section header (the reference read it as empty)", () => {
    const err = configError(() => parseConfigText("invalid", "etc/config", {}));
    expect(err.message).toBe("etc/config:1: File contains no section headers: line before any [section]: 'invalid'");
  });

  it("refuses a config path that does not exist", async () => {
    const missing = join(tmp, "invalid");
    await expect(loadConfig(missing, {})).rejects.toThrow(`Configuration file doesn't exist: ${missing}`);
  });

  it("finds the default file under $SYSTEM_IMAGE_ROOT or the cwd, and fails when absent", async () => {
    const root = mkdtempSync(join(tmp, "root-"));
    expect(defaultConfigPath({}, "/x/y")).toBe("/x/y/etc/config");
    expect(defaultConfigPath({ SYSTEM_IMAGE_ROOT: root }, "/x/y")).toBe(join(root, "etc", "config"));
    await expect(loadConfig(undefined, { SYSTEM_IMAGE_ROOT: root })).rejects.toThrow(
      `Configuration file doesn't exist: ${join(root, "etc", "config")}`,
    );
  });

  it("gives base_path = cwd for an empty file", async () => {
    const conf = await load("");
    expect(conf.base_path).toBe(process.cwd());
    expect(conf.channels.size).toBe(0);
    expect(conf.mirrors).toEqual({});
  });

  it("reads a single mirror", async () => {
    const conf = await load(`[global]
mirrors = a

[mirror_default]
ssh_user = user
ssh_key = key
ssh_port = 22
ssh_command = command

[mirror_a]
ssh_host = host
`);
    expect(conf.mirrors.a).toMatchObject({ type: "trigger", ssh_command: "command" });
    expect(Object.keys(conf.mirrors)).toEqual(["a"]);
  });

  it("KeyError: missing mirror_default, at the line of `mirrors`", () => {
    const err = configError(() => parseConfigText("[global]\nmirrors = a\n\n[mirror_a]\nssh_host = host\n", "etc/config", {}));
    expect(err.kind).toBe("KeyError");
    expect(err.message).toBe("etc/config:2: [global] mirrors: Missing mirror_default section.");
  });

  it("KeyError: missing ssh_key in mirror_default, at its header line", () => {
    const text =
      "[global]\nmirrors = a\n\n[mirror_default]\nssh_user = user\nssh_port = 22\n" +
      "ssh_command = command\n\n[mirror_a]\nssh_host = host\n";
    const err = configError(() => parseConfigText(text, "etc/config", {}));
    expect(err.kind).toBe("KeyError");
    expect(err.message).toBe("etc/config:4: Missing key in mirror_default: ssh_key");
  });

  it("KeyError: missing mirror_a section, at the line of `mirrors`", () => {
    const text = "[global]\nmirrors = a\n\n[mirror_default]\nssh_user = user\nssh_port = 22\n" + "ssh_command = command\nssh_key = key\n";
    const err = configError(() => parseConfigText(text, "etc/config", {}));
    expect(err.kind).toBe("KeyError");
    expect(err.message).toBe("etc/config:2: [global] mirrors: Missing mirror section: mirror_a");
  });

  it("KeyError: missing ssh_host, at the mirror's header line", () => {
    const text =
      "[global]\nmirrors = a\n\n[mirror_default]\nssh_user = user\nssh_port = 22\n" +
      "ssh_command = command\nssh_key = key\n\n[mirror_a]\nssh_user = other-user\n";
    const err = configError(() => parseConfigText(text, "etc/config", {}));
    expect(err.kind).toBe("KeyError");
    expect(err.message).toBe("etc/config:10: Missing key in mirror_a: ssh_host");
  });

  it("loads $SYSTEM_IMAGE_ROOT/etc/config; a relative base_path is made absolute (deliberate)", async () => {
    const root = join(tmp, "a", "b");
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "etc", "config"), "[global]\nbase_path = a/b/c");
    const conf = await loadConfig(undefined, { SYSTEM_IMAGE_ROOT: root });
    // The reference keeps "a/b/c"; we resolve it against the cwd, as its later use did.
    expect(conf.base_path).toBe(resolve("a/b/c"));
    expect(conf.path).toBe(join(root, "etc", "config"));
    // Without base_path, $SYSTEM_IMAGE_ROOT is the base.
    writeFileSync(join(root, "etc", "config"), "[global]\n");
    expect((await loadConfig(undefined, { SYSTEM_IMAGE_ROOT: root })).base_path).toBe(root);
  });

  it("reads two channels: files, fullcount, versionbase and deltabase with defaults", async () => {
    const conf = await load(`[global]
channels = a, b

[channel_a]
type = manual
fullcount = 10

[channel_b]
type = auto
versionbase = 5
deltabase = a, b
files = a, b
file_a = version;arg1;arg2
file_b = version;arg3;arg4
`);
    expect([...conf.channels.keys()]).toEqual(["a", "b"]);
    expect(conf.channels.get("b")!.files).toEqual([
      { name: "a", generator: "version", arguments: ["arg1", "arg2"] },
      { name: "b", generator: "version", arguments: ["arg3", "arg4"] },
    ]);
    const a = conf.channels.get("a")!;
    expect([a.type, a.fullcount, a.versionbase, a.deltabase, a.files]).toEqual(["manual", 10, 1, ["a"], []]);
    const b = conf.channels.get("b")!;
    expect([b.type, b.fullcount, b.versionbase, b.deltabase]).toEqual(["auto", 0, 5, ["a", "b"]]);
  });

  it("reads a single channel with a single file (plain strings become one-element lists)", async () => {
    const conf = await load(`[global]
channels = a

[channel_a]
deltabase = a
versionbase = 1
files = a
file_a = http;arg1;arg2
`);
    const a = conf.channels.get("a")!;
    expect(a.files).toEqual([{ name: "a", generator: "http", arguments: ["arg1", "arg2"] }]);
    expect(a.deltabase).toEqual(["a"]);
    expect(a.type).toBe("manual");
  });

  it("KeyError: a listed channel without a section, at the line of `channels`", () => {
    const err = configError(() => parseConfigText("[global]\nchannels = a\n", "etc/config", {}));
    expect(err.kind).toBe("KeyError");
    expect(err.message).toBe("etc/config:2: [global] channels: Missing channel section: channel_a");
  });

  it("KeyError: a `files` entry without its file_ key, at the line of `files`", () => {
    const err = configError(() => parseConfigText("[global]\nchannels = a\n\n[channel_a]\nfiles = a\n", "etc/config", {}));
    expect(err.kind).toBe("KeyError");
    expect(err.message).toBe("etc/config:5: [channel_a] files: Missing file entry: file_a");
  });
});

describe("file entries and device overrides (§4.5)", () => {
  it("keeps device,mako names and ; inside values; a generator alone has no arguments", async () => {
    const conf = await load(`[global]
channels = devel

[channel_devel]
files = ubports, device,mako, device, version
file_ubports = http;http://x/y;name=a,monitor=b
file_device,mako = system-image;stable;device;device=mako
file_device = remote-system-image;https://si.example.net;stable;device
file_version = version
`);
    expect(conf.channels.get("devel")!.files).toEqual([
      { name: "ubports", generator: "http", arguments: ["http://x/y", "name=a,monitor=b"] },
      { name: "device,mako", generator: "system-image", arguments: ["stable", "device", "device=mako"] },
      { name: "device", generator: "remote-system-image", arguments: ["https://si.example.net", "stable", "device"] },
      { name: "version", generator: "version", arguments: [] },
    ]);
  });

  it("splits on every ; including empty fields", async () => {
    const conf = await load("[global]\nchannels = c\n[channel_c]\nfiles = x\nfile_x = http;;a;\n");
    expect(conf.channels.get("c")!.files[0].arguments).toEqual(["", "a", ""]);
  });

  it("collapses duplicate channel names into one entry, in first position", async () => {
    const conf = await load("[global]\nchannels = b, a, b\n[channel_a]\n[channel_b]\ntype = auto\n");
    expect([...conf.channels.keys()]).toEqual(["b", "a"]);
  });

  it("refuses an unknown generator (the reference's test generator `test` included)", () => {
    const text = "[global]\nchannels = a\n\n[channel_a]\nfiles = a\nfile_a = test;arg1;arg2\n";
    const err = configError(() => parseConfigText(text, "etc/config", {}));
    expect(err.kind).toBe("ValueError");
    expect(err.message).toMatch(/^etc\/config:6: \[channel_a\] file_a: Invalid generator: 'test' \(valid: version, /);
  });

  it("refuses a file_ value containing ', ' (the reference crashed on it)", () => {
    const text = "[global]\nchannels = a\n[channel_a]\nfiles = a\nfile_a = http;http://x, y\n";
    const err = configError(() => parseConfigText(text, "etc/config", {}));
    expect(err.message).toBe(
      `etc/config:5: [channel_a] file_a: expected one value, got a list (the value contains ", "): 'http;http://x, y'`,
    );
  });
});

describe("configparser semantics (§4.2)", () => {
  it("post-processes values: ', ' makes lists, quotes and whitespace are stripped", async () => {
    const conf = await load(`[global]
channels = "a", b,c
public_fqdn = "  host.example.net "
[channel_a]
deltabase = "x, y"
[channel_b,c]
`);
    expect([...conf.channels.keys()]).toEqual(["a", "b,c"]);
    expect(conf.channels.get("a")!.deltabase).toEqual(["x", "y"]);
    expect(conf.public_fqdn).toBe("host.example.net");
  });

  it("accepts ':' delimiters, continuation lines, comments and case-preserving keys", async () => {
    const conf = await load(`# comment
; another
[global]
channels: a
publish_path=pub
[channel_a]
deltabase = x,
   # a comment inside a continuation is skipped
  y
files = v
file_v : version;a=b:c
`);
    // "x,\ny" holds no ", " so it is ONE name containing a newline.
    expect(conf.channels.get("a")!.deltabase).toEqual(["x,\ny"]);
    expect(conf.channels.get("a")!.files[0].arguments).toEqual(["a=b:c"]);
    expect(conf.publish_path).toBe(join(process.cwd(), "pub"));
    // Case-preserving: Publish_Path is another key, one the server does not read (strict, issue 15).
    await expect(load("[global]\nPublish_Path = pub\n")).rejects.toThrow(
      /:2: \[global\] Publish_Path: unknown key; did you mean 'publish_path'\?$/,
    );
  });

  it("inherits [DEFAULT] options in every section", async () => {
    const conf = await load("[DEFAULT]\nfullcount = 3\n[global]\nchannels = a\n[channel_a]\n");
    expect(conf.channels.get("a")!.fullcount).toBe(3);
  });

  it("matches python3's configparser on tricky input", () => {
    const cases = [
      "[a]\nk=v\n\n  cont\n#c\n  more\n\n\n",
      "[a] trailing\nk : v=w\nK = upper\n",
      "[a]]\n  k=v\n  j=w\n",
      "[a]\nk=v\n  [b]\nj=1\n",
      "  [s]\n\tx = 1 ; not a comment # nor this\ny =\n\n\n z\n",
      "[DEFAULT]\nd=1\n[a]\nk=v\n[DEFAULT]\ne=2\n[b]\nd=own\n",
      "[a]\r\nk=v\r\n  w\rj=x\n",
    ];
    const py = `
import configparser, io, json, sys
out = []
for text in json.load(sys.stdin):
    c = configparser.ConfigParser(interpolation=None)
    c.optionxform = str
    # newline=None: universal newlines, as when the reference reads the file with open().
    c.read_file(io.StringIO(text, newline=None))
    out.append([[s, [[o, c.get(s, o)] for o in c.options(s)]] for s in c.sections()])
print(json.dumps(out))
`;
    const r = spawnSync("python3", ["-c", py], { input: JSON.stringify(cases), encoding: "utf8" });
    expect(r.stderr).toBe("");
    const expected = JSON.parse(r.stdout) as unknown;
    const ours = cases.map((text) =>
      [...parseIni(text, "t").sections.values()].map((s) => [s.name, [...s.options.values()].map((o) => [o.name, o.value])]),
    );
    expect(ours).toEqual(expected);
  });
});

describe("[global] defaults and paths (§4.3)", () => {
  it("fills every default from base_path", async () => {
    const conf = await load(`[global]\nbase_path = ${tmp}\n`);
    expect(conf).toEqual({
      path: expect.stringContaining(tmp) as string,
      base_path: tmp,
      gpg_key_path: join(tmp, "secret/gpg/keys"),
      gpg_keyring_path: join(tmp, "secret/gpg/keyrings"),
      publish_path: join(tmp, "www"),
      state_path: join(tmp, "state"),
      tls_cert: join(tmp, "secret/tls/cert.pem"),
      tls_key: join(tmp, "secret/tls/key.pem"),
      admin_port: 8090,
      admin_address: "127.0.0.1",
      image_signing_expiry_days: 730,
      device_signing_expiry_days: 31,
      xz_level: 9,
      http_retries: 2,
      versioned_index: true,
      image_max_bytes: 16 * 1024 ** 3,
      image_max_members: 2_000_000,
      image_max_ratio: 50,
      image_allow_devices: false,
      delta_mtime: "content",
      delta_xz_block_mib: 16,
      delta_xz_dict_mib: 4,
      mirror_verify: false,
      mirrors: {},
      channels: new Map(),
    });
    expect("import_schedule" in conf).toBe(false);
  });

  it("prefixes relative paths with base_path once and keeps absolute ones", async () => {
    const conf = await load(`[global]
base_path = rel
gpg_key_path = /abs/keys/
publish_path = www/
state_path = ../state
tls_key = k.pem
`);
    const base = resolve("rel");
    expect(conf.base_path).toBe(base);
    expect(conf.gpg_key_path).toBe("/abs/keys");
    expect(conf.gpg_keyring_path).toBe(join(base, "secret/gpg/keyrings"));
    expect(conf.publish_path).toBe(join(base, "www"));
    expect(conf.state_path).toBe(resolve("state"));
    expect(conf.tls_key).toBe(join(base, "k.pem"));
  });

  it("reads the public keys, ports as strings and the server settings", async () => {
    const conf = await load(`[global]
public_fqdn = si.example.net
public_http_port = 0
public_https_port = 8443
import_schedule = 0 3 * * *
admin_port = 9000
admin_address = 0.0.0.0
image_signing_expiry_days = 365
device_signing_expiry_days = 7
xz_level = 6
`);
    expect([conf.public_fqdn, conf.public_http_port, conf.public_https_port]).toEqual(["si.example.net", "0", "8443"]);
    expect([conf.import_schedule, conf.admin_port, conf.admin_address]).toEqual(["0 3 * * *", 9000, "0.0.0.0"]);
    expect([conf.image_signing_expiry_days, conf.device_signing_expiry_days, conf.xz_level]).toEqual([365, 7, 6]);
  });

  it("treats an empty import_schedule as off", async () => {
    expect((await load("[global]\nimport_schedule =\n")).import_schedule).toBeUndefined();
  });
});

describe("errors name file, line, section and key", () => {
  const cases: [string, string, string][] = [
    ["no delimiter", "[global]\nchannels\n", "etc/config:2: [global] expected 'key = value', got 'channels'"],
    ["empty key", "[global]\n= x\n", "etc/config:2: [global] missing option name before '='"],
    ["duplicate section", "[global]\n\n[a]\n[global]\n", "etc/config:4: duplicate section [global] (first defined at line 1)"],
    [
      "duplicate option",
      "[global]\nxz_level = 1\nxz_level = 2\n",
      "etc/config:3: [global] xz_level: duplicate option (first set at line 2)",
    ],
    [
      "non-integer versionbase",
      "[global]\nchannels = devel\n\n[channel_devel]\nversionbase = x\n",
      "etc/config:5: [channel_devel] versionbase: invalid integer 'x'",
    ],
    [
      "non-integer fullcount",
      "[global]\nchannels = d\n[channel_d]\nfullcount = 1.5\n",
      "etc/config:4: [channel_d] fullcount: invalid integer '1.5'",
    ],
    [
      "versionbase 0",
      "[global]\nchannels = d\n[channel_d]\nversionbase = 0\n",
      "etc/config:4: [channel_d] versionbase: 0 is out of range (1-9007199254740991)",
    ],
    [
      "bad type",
      "[global]\nchannels = d\n[channel_d]\ntype = Auto\n",
      "etc/config:4: [channel_d] type: must be 'auto' or 'manual', got 'Auto'",
    ],
    [
      "port too large",
      "[global]\npublic_https_port = 70000\n",
      "etc/config:2: [global] public_https_port: 70000 is out of range (0-65535)",
    ],
    ["port not a number", "[global]\nadmin_port = http\n", "etc/config:2: [global] admin_port: invalid integer 'http'"],
    ["xz level", "[global]\nxz_level = 10\n", "etc/config:2: [global] xz_level: 10 is out of range (0-9)"],
    [
      "list path",
      "[global]\npublish_path = a, b\n",
      `etc/config:2: [global] publish_path: expected one value, got a list (the value contains ", "): 'a, b'`,
    ],
  ];
  for (const [name, text, message] of cases) {
    it(name, () => expect(configError(() => parseConfigText(text, "etc/config", {})).message).toBe(message));
  }

  it("reports a bad ssh_port as ValueError at the mirror's own line", () => {
    const text = MIRRORS_AB("/srv").replace("ssh_host = hostb", "ssh_host = hostb\nssh_port = twenty");
    const err = configError(() => parseConfigText(text, "etc/config", {}));
    expect(err.kind).toBe("ValueError");
    expect(err.message).toBe("etc/config:16: [mirror_b] ssh_port: invalid integer 'twenty'");
  });

  it("gives `mirrors =` the reference's meaning: one mirror named ''", () => {
    const err = configError(() => parseConfigText("[global]\nmirrors =\n", "etc/config", {}));
    expect(err.message).toBe("etc/config:2: [global] mirrors: Missing mirror_default section.");
  });
});

describe("mirrors (§4.4)", () => {
  it("sorts by ssh_host and applies per-mirror overrides", async () => {
    const conf = await load(
      MIRRORS_AB("/srv")
        .replace("mirrors = a, b", "mirrors = b, a")
        .replace("ssh_host = hosta", "ssh_host = zz.example\nssh_key = /etc/key\nssh_port = 2222\nssh_user = u2")
        .replace("ssh_host = hostb", "ssh_host = aa.example\nssh_command = other"),
    );
    const ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"];
    expect(mirrorCommands(conf)).toEqual([
      [...ssh, "-i", "/srv/key", "-l", "user", "-p", "22", "aa.example", "other"],
      [...ssh, "-i", "/etc/key", "-l", "u2", "-p", "2222", "zz.example", "command"],
    ]);
    expect(conf.mirrors.a).toEqual({
      name: "a",
      type: "trigger",
      ssh_host: "zz.example",
      ssh_user: "u2",
      ssh_key: "/etc/key",
      ssh_port: 2222,
      ssh_command: "command",
    });
  });

  it("never fails a publish: a failing status or a runner that cannot start is an outcome, after trying all", async () => {
    await expect(runSsh(["true"], { timeoutMs: 10_000 })).resolves.toBeUndefined();
    await expect(runSsh(["false"], { timeoutMs: 10_000 })).rejects.toThrow(/exited with status 1/);
    await expect(runSsh([join(tmp, "no-such-ssh")], { timeoutMs: 10_000 })).rejects.toThrow(/ENOENT/);
    const conf = await load(MIRRORS_AB("/srv"));
    const tried: string[] = [];
    const run = async (argv: string[]) => {
      tried.push(argv[argv.length - 2]);
      throw new Error("spawn ssh ENOENT");
    };
    const results = await syncMirrors(conf, { run });
    expect(results.map((r) => [r.host, r.outcome, r.error])).toEqual([
      ["hosta", "failed", "spawn ssh ENOENT"],
      ["hostb", "failed", "spawn ssh ENOENT"],
    ]);
    expect(tried.sort()).toEqual(["hosta", "hostb"]);
  });
});

describe("unpackArguments (§5.2)", () => {
  it("splits on , then on the first = and drops items without =", () => {
    expect(unpackArguments("a=1,b=2")).toEqual({ a: "1", b: "2" });
    expect(unpackArguments("a=1,b=2,c")).toEqual({ a: "1", b: "2" });
    expect(unpackArguments("a=1,b=2=1,c,v=1=1=1=1,d=c")).toEqual({ a: "1", b: "2=1", v: "1=1=1=1", d: "c" });
    expect(unpackArguments("a=1,a=2,__proto__=x")).toEqual({ a: "2", ["__proto__"]: "x" });
    expect(unpackArguments("")).toEqual({});
  });
});

describe("etc/config.example and the CLI", () => {
  it("etc/config.example loads without error", async () => {
    const conf = await loadConfig("etc/config.example", {});
    expect([...conf.channels.keys()]).toEqual(["16.04/devel", "16.04/stable"]);
    expect(conf.channels.get("16.04/devel")!.files.map((f) => f.name)).toEqual(["rootfs", "device,mako", "device", "keyring", "version"]);
    // Shipped commented out (issue 15 item 4): an example host must not be contacted.
    expect(Object.keys(conf.mirrors)).toEqual([]);
  });

  const si = (...args: string[]) =>
    spawnSync(process.execPath, ["bin/si.js", ...args], { encoding: "utf8", env: { ...process.env, SI_DEBUG: "" } });

  it("si config show: a bad config is one stderr line with file:line and exit status 1", () => {
    const bad = write("[global]\nchannels = devel\n\n[channel_devel]\nversionbase = x\n");
    const r = si("--config", bad, "config", "show");
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`si: error: ${bad}:5: [channel_devel] versionbase: invalid integer 'x'\n`);
  });

  it("si config show: a missing config file", () => {
    const r = si("--config", join(tmp, "nope"), "config", "show");
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`si: error: Configuration file doesn't exist: ${join(tmp, "nope")}\n`);
  });

  it("si config show --json prints channels with their files, and text mode the mirrors", () => {
    const r = si("--config", "etc/config.example", "config", "show", "--json");
    expect(r.status).toBe(0);
    const json = JSON.parse(r.stdout) as { publish_path: string; channels: { name: string; files: unknown[] }[] };
    expect(json.publish_path).toBe("/srv/system-image/www");
    expect(json.channels.map((c) => [c.name, c.files.length])).toEqual([
      ["16.04/devel", 5],
      ["16.04/stable", 0],
    ]);
    const text = si("--config", "etc/config.example", "config", "show");
    expect(text.status).toBe(0);
    expect(text.stdout).toContain("\nmirrors: (none)\n");
    expect(text.stdout).toContain("    device,mako: http;https://ci.example.net/mako/device.tar.xz;");
  });
});
