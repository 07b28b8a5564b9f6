/**
 * Issue 15 item 6: `si completion bash|zsh` prints a completion script made from the
 * commander program, so it offers every command `si --help` lists. The scripts are checked
 * by the shells themselves (`bash -n`, `zsh -n`) and then run: sourced, given the words of a
 * command line, asked what comes next.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { REPO, runSi } from "../helpers/instance.js";

const dir = mkdtempSync(join(tmpdir(), "si-completion-"));
const hasZsh = spawnSync("zsh", ["-c", "true"]).status === 0;

function script(shell: string): string {
  const r = runSi(["completion", shell]);
  expect(r.status, r.stderr).toBe(0);
  const file = join(dir, `si.${shell}`);
  writeFileSync(file, r.stdout);
  return file;
}

/** The first word of each line in the "Commands:" section of `si [cmd] --help`. */
function helpCommands(stdout: string): string[] {
  const section = stdout.split(/^Commands:$/m)[1] ?? "";
  return [...section.matchAll(/^ {2}([a-z][a-z0-9-]*)/gm)].map((m) => m[1]);
}

/** What bash's completion function offers after the words typed (the last one may be partial). */
function bashComplete(file: string, words: string[]): string[] {
  const arr = words.map((w) => `'${w}'`).join(" ");
  const r = spawnSync(
    "bash",
    ["-c", `source '${file}'; COMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _si; printf '%s\\n' "\${COMPREPLY[@]}"`],
    { encoding: "utf8", cwd: dir },
  );
  expect(r.stderr).toBe("");
  return r.stdout.split("\n").filter(Boolean);
}

/** The same for zsh, with the completion system's _describe and _files stubbed to print. */
function zshComplete(file: string, words: string[]): string[] {
  const arr = words.map((w) => `'${w}'`).join(" ");
  const stubs = `_describe() { print -rl -- "\${(@P)4%%:*}" }; _files() { print -r -- '(files)' }; compdef() { : }`;
  const r = spawnSync("zsh", ["-c", `${stubs}; source '${file}'; words=(${arr}); CURRENT=${words.length}; _si`], {
    encoding: "utf8",
    cwd: dir,
  });
  expect(r.stderr).toBe("");
  return r.stdout.split("\n").filter(Boolean);
}

/**
 * `si <cmd> --help` of each command, in one process (one node start per command took a
 * minute on a loaded machine): the compiled CLI's main() with stdout captured.
 */
function helpOfEach(commands: string[]): Record<string, string> {
  const code = `
    import { main } from ${JSON.stringify(pathToFileURL(join(REPO, "dist/src/cli/main.js")).href)};
    const write = process.stdout.write.bind(process.stdout);
    const out = {};
    for (const c of JSON.parse(process.env.SI_HELP_OF)) {
      let text = "";
      process.stdout.write = (s) => ((text += s), true);
      await main(["node", "si", c, "--help"]);
      process.stdout.write = write;
      out[c] = text;
    }
    write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    encoding: "utf8",
    env: { ...process.env, SI_HELP_OF: JSON.stringify(commands) },
  });
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as Record<string, string>;
}

describe("si completion bash", () => {
  const file = script("bash");
  const top = helpCommands(runSi(["--help"]).stdout);

  it("is a script bash -n accepts", () => {
    const r = spawnSync("bash", ["-n", file], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("offers every command si --help lists, and nothing else", () => {
    expect(top).toEqual(expect.arrayContaining(["channel", "check-latest", "completion", "import-images", "serve", "help"]));
    expect(bashComplete(file, ["si", ""]).sort()).toEqual([...top].sort());
    expect(bashComplete(file, ["si", "ch"])).toEqual(["channel", "check-latest"]);
  });

  it("offers every subcommand of each command that has some, as its --help lists them", () => {
    const helps = Object.entries(helpOfEach(top.filter((c) => c !== "help"))).map(([c, help]) => [c, helpCommands(help)] as const);
    const withSubs = helps.filter(([, subs]) => subs.length > 0);
    expect(withSubs.map(([c]) => c)).toEqual(expect.arrayContaining(["channel", "device", "config"]));
    for (const [c, subs] of withSubs) expect(bashComplete(file, ["si", c, ""]).sort(), c).toEqual([...subs].sort());
  });

  it("skips option values (--config FILE) and completes options of the command typed", () => {
    expect(bashComplete(file, ["si", "--config", "channel", "ch"])).toEqual(["channel", "check-latest"]);
    expect(bashComplete(file, ["si", "-c", "etc/config", "channel", "cr"])).toEqual(["create"]);
    expect(bashComplete(file, ["si", "check-latest", "--"])).toEqual(expect.arrayContaining(["--server", "--channel", "--ca", "--help"]));
    expect(bashComplete(file, ["si", "--"])).toEqual(expect.arrayContaining(["--config", "--version", "--help"]));
  });

  it("completes file names after an option that takes a value", () => {
    writeFileSync(join(dir, "ca-cert.pem"), "");
    expect(bashComplete(file, ["si", "check-latest", "mako", "--ca", "ca-"])).toEqual(["ca-cert.pem"]);
  });
});

describe.runIf(hasZsh)("si completion zsh (needs zsh)", () => {
  const file = script("zsh");

  it("is a script zsh -n accepts", () => {
    const r = spawnSync("zsh", ["-n", file], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("offers every command si --help lists, each subcommand, and files after --ca", () => {
    const top = helpCommands(runSi(["--help"]).stdout);
    expect(zshComplete(file, ["si", ""]).sort()).toEqual([...top].sort());
    expect(zshComplete(file, ["si", "--config", "x", "channel", ""])).toEqual(expect.arrayContaining(["create", "list", "rename"]));
    expect(zshComplete(file, ["si", "check-latest", "-"])).toEqual(expect.arrayContaining(["--server", "--ca"]));
    expect(zshComplete(file, ["si", "check-latest", "--ca", ""])).toEqual(["(files)"]);
  });
});

describe("si completion with another shell", () => {
  it("is a usage error naming the shells it knows", () => {
    const r = runSi(["completion", "fish"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("si: error: Cannot make a completion script for 'fish': bash and zsh are supported\n");
  });
});
