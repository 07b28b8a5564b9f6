/**
 * Issue 15 item 6: the reference's admin shell was Python, and a user who pastes its loop
 * `for keyring in ("a", "b"): pub.publish_keyring(keyring)` into `si shell` got only
 * `Unexpected identifier`. Now the error says what the JavaScript is, and that JavaScript
 * runs: checked by running it, from `-e` and in the interactive REPL.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { runRepl } from "../../src/shell/repl.js";
import { pythonHint } from "../../src/shell/python-hint.js";
import { ShellSession } from "../../src/shell/session.js";
import { adminFixture } from "../admin/fixture.js";

const PYTHON_LOOP = 'for keyring in ("archive-master", "image-master"): pub.publish_keyring(keyring)';
const JS_LOOP = 'for (const keyring of ["archive-master", "image-master"]) await pub.publish_keyring(keyring);';

describe("pythonHint", () => {
  it("gives the JavaScript form of the reference's one-line loop", () => {
    expect(pythonHint('for keyring in ("a", "b"): pub.publish_keyring(keyring)')).toBe(
      'the si shell runs JavaScript, not Python; write: for (const keyring of ["a", "b"]) await pub.publish_keyring(keyring);',
    );
  });

  it("handles an indented body, tuple unpacking, lists, range() and Python's literals", () => {
    expect(pythonHint("for c in ['a', 'b']:\n    pub.create_channel(c)\n    print(c, True, None)\n")).toBe(
      "the si shell runs JavaScript, not Python; write: for (const c of ['a', 'b']) { await pub.create_channel(c); console.log(c, true, null); }",
    );
    expect(pythonHint('for name, target in (("a", "b"),): pub.create_channel_alias(name, target)')).toContain(
      'for (const [name, target] of [("a", "b")]) await pub.create_channel_alias(name, target);',
    );
    expect(pythonHint("for i in range(3): print(i)")).toContain("for (const i of Array.from({ length: 3 }, (_, i) => i)) console.log(i);");
    expect(pythonHint("for c in pub.list_channels(): print(c)")).toContain("for (const c of await pub.list_channels()) console.log(c);");
  });

  it("names other Python blocks and imports, and leaves code that is not Python alone", () => {
    expect(pythonHint("def f(x):\n    return x")).toMatch(/runs JavaScript, not Python/);
    expect(pythonHint("import os")).toMatch(/runs JavaScript, not Python/);
    expect(pythonHint("pub.create_channel(")).toBeUndefined();
    expect(pythonHint("for (const k of [1, 2]) { x = k ? 1 : 2")).toBeUndefined();
  });
});

describe("si shell given the reference's Python loop", () => {
  it("-e: one error line that gives the JavaScript; that JavaScript publishes both keyrings", async () => {
    const fx = await adminFixture({ keyrings: true });
    const r = fx.inst.si("shell", "-e", PYTHON_LOOP);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`si: error: Unexpected identifier 'keyring': the si shell runs JavaScript, not Python; write: ${JS_LOOP}\n`);
    expect(existsSync(join(fx.pub, "gpg/archive-master.tar.xz"))).toBe(false);

    const js = fx.inst.si("shell", "-e", JS_LOOP);
    expect(js.stderr).toBe("");
    expect(js.status).toBe(0);
    for (const k of ["archive-master", "image-master"]) expect(existsSync(join(fx.pub, `gpg/${k}.tar.xz.asc`)), k).toBe(true);
  });

  it("interactive: the REPL's SyntaxError carries the JavaScript form, which then works", async () => {
    const fx = await adminFixture({ keyrings: true });
    const session = new ShellSession(fx.config, { lockWaitMs: 10_000 });
    const input = new PassThrough();
    const output = new PassThrough();
    let text = "";
    output.setEncoding("utf8").on("data", (d: string) => (text += d));
    const done = runRepl(session, { input, output, terminal: false, historyPath: null });
    input.write(`${PYTHON_LOOP}\n`);
    input.write(`${JS_LOOP}\n`);
    input.write('"published: " + (await pub.list_channels() !== undefined)\n');
    input.end();
    await done;
    expect(text).toContain(`SyntaxError: Unexpected identifier 'keyring'\nthe si shell runs JavaScript, not Python; write: ${JS_LOOP}\n`);
    expect(text).toContain("'published: true'");
    for (const k of ["archive-master", "image-master"]) expect(existsSync(join(fx.pub, `gpg/${k}.tar.xz.asc`)), k).toBe(true);
  });
});
