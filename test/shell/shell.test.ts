/**
 * `si shell` (server-reference §9.7): the reference's commands verbatim, from `-e`, from
 * piped stdin, and interactively on a real pseudo-terminal (driven by python3's pty).
 * Scripts finish every operation they start, awaited or not, in call order, and report each
 * failure nobody handled as one line (exit 1), never as an unhandled-rejection crash.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ChannelsDoc } from "../../src/model/channels.js";
import { ADMIN_OPS, DEVICE_OPS, TREE_OPS, opsHelp } from "../../src/shell/ops.js";
import { DEVICE_METHODS, TREE_METHODS } from "../../src/tree/index.js";
import { snakeName } from "../../src/tree/context.js";
import { REPO, runSi } from "../helpers/instance.js";
import { fingerprint, verifyTree } from "../tree/fixture.js";
import { adminFixture, poolTarball, readIndex, type AdminFixture } from "../admin/fixture.js";

const WALKTHROUGH = `
await pub.create_channel("test");
await pub.create_device("test", "mako");
for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) pub.publish_keyring(k);
const d = await pub.get_device("test", "mako");
await d.create_image("full", 1, "First", ["pool/ubports-1111.tar.xz", "pool/keyring-2222.tar.xz"], null, false, null, "ubports=1111");
await pub.create_channel_alias("stable", "test");
await pub.create_channel_redirect("old", "test");
await d.set_phased_percentage(1, 40);
await admin.tag_image("test", "mako", 1, "OTA-1");
await pub.create_channel("rc");
await pub.createDevice("rc", "mako");
await admin.copy_image("test", "rc", "mako", { phased: 30 });
`;

async function shellTree(): Promise<AdminFixture> {
  const fx = await adminFixture({ keyrings: true });
  await poolTarball(fx, "pool/ubports-1111.tar.xz", { "system/etc/os-release": "1\n" });
  await poolTarball(fx, "pool/keyring-2222.tar.xz", { "archive-master.tar.xz": "k\n" });
  return fx;
}

function checkWalkthrough(fx: AdminFixture): void {
  const channels = JSON.parse(readFileSync(join(fx.pub, "channels.json"), "utf8")) as Record<string, Record<string, unknown>>;
  expect(Object.keys(channels).sort()).toEqual(["old", "rc", "stable", "test"]);
  expect(channels.stable).toMatchObject({ alias: "test" });
  expect(channels.old).toMatchObject({ redirect: "test", hidden: true });
  for (const k of ["archive-master", "image-master", "image-signing", "blacklist"])
    expect(existsSync(join(fx.pub, "gpg", `${k}.tar.xz.asc`)), k).toBe(true);
  const summary = (c: string) =>
    readIndex(fx, c, "mako").images.map((i) => [i.type, i.version, i["phased-percentage"] ?? 100, i.version_detail]);
  expect(summary("test")).toEqual([
    ["full", 1, 100, "ubports=1111"],
    ["full", 2, 40, "ubports=1111,tag=OTA-1,version=2"],
    ["delta", 2, 40, "ubports=1111,tag=OTA-1,version=2"],
  ]);
  expect(summary("stable")).toEqual(summary("test"));
  expect(summary("rc")).toEqual([["full", 1, 30, "ubports=1111,tag=OTA-1,version=1"]]);
  verifyTree(fx.pub);
}

describe("si shell, non-interactive", () => {
  it("runs the walkthrough from -e, with the reference's names", async () => {
    const fx = await shellTree();
    const r = fx.inst.si("shell", "-e", WALKTHROUGH);
    expect([r.status, r.stderr]).toEqual([0, ""]);
    checkWalkthrough(fx);
  });

  it("runs the same walkthrough piped on stdin", async () => {
    const fx = await shellTree();
    const r = runSi(["--config", fx.inst.config, "shell"], { input: WALKTHROUGH });
    expect([r.status, r.stderr]).toEqual([0, ""]);
    checkWalkthrough(fx);
  });

  it("finishes operations nobody awaited, in call order, before exiting", async () => {
    const fx = await adminFixture({ keyrings: true });
    // Each call needs the one before it: only call order makes all of them succeed.
    const code = `pub.create_channel("a"); pub.create_device("a", "mako"); pub.create_channel_alias("b", "a");
pub.create_channel_redirect("c", "b"); pub.hide_channel("a");
for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) pub.publish_keyring(k)`;
    const r = fx.inst.si("shell", "-e", code);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "true\n", ""]);
    const channels = JSON.parse(readFileSync(join(fx.pub, "channels.json"), "utf8")) as Record<string, Record<string, unknown>>;
    expect(channels).toMatchObject({ a: { hidden: true }, b: { alias: "a", devices: { mako: {} } }, c: { redirect: "b", hidden: true } });
    expect(existsSync(join(fx.pub, "b/mako/index.json"))).toBe(true);
    verifyTree(fx.pub); // the four keyrings too
  });

  it("prints an expression's resolved value", async () => {
    const fx = await adminFixture();
    fx.ok("channel", "create", "test");
    expect(fx.inst.si("shell", "-e", "pub.list_channels()").stdout).toBe("{ test: { devices: {} } }\n");
    expect(fx.inst.si("shell", "-e", "await pub.listChannels();").stdout).toBe("{ test: { devices: {} } }\n");
    expect(fx.inst.si("shell", "-e", "conf.publish_path").stdout).toBe(`'${fx.pub}'\n`);
    expect(fx.inst.si("shell", "-e", "const x = await pub.list_devices('test'); console.log(x.length)").stdout).toBe("0\n");
  });

  it("reports each failure nobody handled as one line, exits 1, and still does the rest", async () => {
    const fx = await adminFixture();
    const code = `pub.create_channel("x"); pub.create_channel("x"); pub.remove_channel("nope");
pub.get_device("x", "mako").catch(() => "handled, not reported");
pub.create_device("x", "mako"); "done"`;
    const r = fx.inst.si("shell", "-e", code);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("'done'\n");
    expect(r.stderr.split("\n").filter(Boolean)).toEqual([
      "si: error: pub.create_channel('x'): Channel already exists: x",
      "si: error: pub.remove_channel('nope'): Couldn't find channel: nope",
    ]);
    // The device's index: the content-named copy of x/mako/index.json (src/tree/versioned-index.ts).
    expect(JSON.parse(readFileSync(join(fx.pub, "channels.json"), "utf8"))).toEqual({
      x: { devices: { mako: { index: expect.stringMatching(/^\/x\/mako\/index-[0-9a-f]{16}\.json$/) as string } } },
    });

    // An awaited failure ends the script there; operations already started still finish.
    const before = fingerprint(fx.pub);
    const r2 = fx.inst.si("shell", "-e", 'pub.create_channel("y"); await pub.get_device("x", "nope"); await pub.create_channel("z")');
    expect([r2.status, r2.stdout, r2.stderr]).toEqual([1, "", "si: error: pub.get_device('x', 'nope'): Couldn't find device: nope\n"]);
    expect(Object.keys(JSON.parse(readFileSync(join(fx.pub, "channels.json"), "utf8")) as ChannelsDoc)).toEqual(["x", "y"]);
    expect(fingerprint(fx.pub)).not.toEqual(before);

    for (const [code2, line] of [
      ["throw new Error('boom')", "si: error: boom"],
      ["this is not javascript", "si: error: Unexpected identifier 'is'"],
      ["admin.tag_image('x', 'mako', 1, 'T')", "si: error: admin.tag_image('x', 'mako', 1, 'T'): No images in selected channel/device."],
    ]) {
      const r3 = fx.inst.si("shell", "-e", code2);
      expect([r3.status, r3.stderr], code2).toEqual([1, `${line}\n`]);
    }
  });
});

describe("si shell, interactive", () => {
  it("greets, awaits results, completes pub., lists .ops, keeps history, and shows errors in one line", async () => {
    const fx = await adminFixture();
    fx.ok("channel", "create", "test");
    // A tiny expect: send keys, wait for a pattern, on a real pseudo-terminal.
    const driver = `
import os, pty, re, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
buf = b""
def expect(pattern, timeout=60):
    global buf
    end = time.time() + timeout
    while time.time() < end:
        text = re.sub(rb"\\x1b\\[[0-9;]*[A-Za-z]", b"", buf).decode(errors="replace")
        if re.search(pattern, text):
            buf = b""
            return text
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try: buf += os.read(fd, 65536)
            except OSError: break
    sys.stdout.write("TIMEOUT waiting for " + pattern + "\\n" + text)
    sys.exit(3)
def send(keys):
    for ch in keys:
        os.write(fd, ch.encode()); time.sleep(0.02)
out = []
out.append(expect(r"si> $"))
send('pub.list_channels()\\r'); out.append(expect(r"devices.*\\n.*si> $"))
send('pub.create_ch\\t\\t'); out.append(expect(r"create_channel_redirect"))
send('\\x15.ops\\r'); out.append(expect(r"admin\\.copy_image.*[\\s\\S]*si> $"))
send('pub.create_channel("test")\\r'); out.append(expect(r"Uncaught.*\\n.*si> $"))
send('\\x04'); expect(r"$", 2)
_, status = os.waitpid(pid, 0)
out.append("EXIT %d" % os.waitstatus_to_exitcode(status))
print("\\n=====\\n".join(out))
`;
    const r = spawnSync("python3", ["-c", driver, process.execPath, join(REPO, "bin/si.js"), "--config", fx.inst.config, "shell"], {
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const [greet, listed, completed, ops, failed, exit] = r.stdout.split("\n=====\n");
    expect(greet).toContain(
      "Welcome to the system-image shell.\r\nThe configuration is available as: conf\r\nThe system-image tree is available as: pub",
    );
    expect(listed).toContain("{ test: { devices: {} } }");
    expect(completed).toMatch(/pub\.create_channel\s/);
    expect(completed).toContain("pub.create_channel_alias");
    expect(ops).toContain("pub.publish_keyring(name)");
    expect(failed).toContain("Uncaught KeyError: pub.create_channel('test'): Channel already exists: test\r\n");
    expect(failed).not.toContain("    at ");
    expect(exit.trim()).toBe("EXIT 0");
    const history = readFileSync(join(fx.inst.state, "shell_history"), "utf8");
    expect(history).toContain('pub.create_channel("test")');
    expect(history).toContain("pub.list_channels()");
  });
});

describe(".ops", () => {
  it("lists every Tree and Device operation by its reference name, one line each", () => {
    const listed = (ops: readonly { call: string }[]) => ops.map((o) => o.call.slice(0, o.call.indexOf("(")));
    expect(listed(TREE_OPS).sort()).toEqual(TREE_METHODS.map(snakeName).sort());
    expect(listed(DEVICE_OPS).sort()).toEqual(DEVICE_METHODS.map(snakeName).sort());
    expect(listed(ADMIN_OPS)).toEqual(["copy_image", "tag_image", "set_phased_percentage", "cleanup_tree", "re_sign_indexes"]);
    const text = opsHelp();
    for (const o of [...TREE_OPS, ...DEVICE_OPS, ...ADMIN_OPS]) expect(text).toContain(o.help);
  });
});
