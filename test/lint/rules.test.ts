/**
 * The lint rules catch what they are for (issue 18): each deliberate violation below, written
 * into a scratch project that uses this repository's own configuration files (Prettier,
 * ESLint with typescript-eslint's type-aware rules, dependency-cruiser's layers), fails
 * `npm run lint`'s tools with the rule that names it; the same project without the
 * violations passes. `npm test` runs `npm run lint` over the real tree first.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO } from "../helpers/instance.js";

const CONFIGS = [
  ".prettierrc.json",
  ".prettierignore",
  "eslint.config.js",
  "tsconfig.json",
  "tsconfig.eslint.json",
  ".dependency-cruiser.cjs",
  "package.json",
];

/** Files every scratch project has: clean, formatted, layered as the rules want. */
const CLEAN: Record<string, string> = {
  "src/errors.ts": "export class SiError extends Error {}\n",
  "src/model/names.ts":
    'import { SiError } from "../errors.js";\n\nexport function checkName(name: string): string {\n  if (name === "") throw new SiError("Cannot use an empty name");\n  return name;\n}\n',
  "src/io/files.ts":
    'import { readFile } from "node:fs/promises";\n\nexport async function readText(path: string): Promise<string> {\n  return readFile(path, "utf8");\n}\n',
  "src/tree/tree.ts":
    'import { readText } from "../io/files.js";\nimport { checkName } from "../model/names.js";\n\nexport async function channelNames(path: string): Promise<string[]> {\n  const doc = JSON.parse(await readText(path)) as Record<string, unknown>;\n  return Object.keys(doc).map(checkName);\n}\n',
  "src/server/start.ts": 'export function startServer(): string {\n  return "started";\n}\n',
  "src/dashboard/handler.ts":
    'import { startServer } from "../server/start.js";\n\nexport const dashboard = (): string => startServer();\n',
  "src/cli/main.ts":
    'import { channelNames } from "../tree/tree.js";\n\nexport async function main(): Promise<void> {\n  console.log(await channelNames("channels.json"));\n}\n',
};

interface Probe {
  what: string;
  files: Record<string, string>;
  tool: "eslint" | "depcruise" | "prettier";
  /** The rule name the tool must report. */
  rule: string;
}

const PROBES: Probe[] = [
  {
    what: "an import cycle",
    tool: "depcruise",
    rule: "no-circular",
    files: {
      "src/tree/a.ts": 'import { b } from "./b.js";\n\nexport const a = (): string => b();\n',
      "src/tree/b.ts": 'import { a } from "./a.js";\n\nexport const b = (): string => (Math.random() > 2 ? a() : "b");\n',
    },
  },
  {
    what: "an upward import (model/ reaching into tree/)",
    tool: "depcruise",
    rule: "layer-1-imports-upward",
    files: { "src/model/up.ts": 'import { channelNames } from "../tree/tree.js";\n\nexport const up = channelNames;\n' },
  },
  {
    what: "an IO module in model/",
    tool: "depcruise",
    rule: "pure-domain-no-io",
    files: {
      "src/model/disk.ts": 'import { existsSync } from "node:fs";\n\nexport const there = (p: string): boolean => existsSync(p);\n',
    },
  },
  {
    what: "server/ importing the admin listener",
    tool: "depcruise",
    rule: "server-not-dashboard",
    files: { "src/server/admin.ts": 'import { dashboard } from "../dashboard/handler.js";\n\nexport const admin = dashboard;\n' },
  },
  {
    what: "a module below cli/ importing cli/",
    tool: "depcruise",
    rule: "nothing-imports-cli",
    files: { "src/tree/run.ts": 'import { main } from "../cli/main.js";\n\nexport const run = main;\n' },
  },
  {
    what: "a floating promise",
    tool: "eslint",
    rule: "@typescript-eslint/no-floating-promises",
    files: {
      "src/tree/float.ts":
        'import { readText } from "../io/files.js";\n\nexport function touch(path: string): void {\n  readText(path);\n}\n',
    },
  },
  {
    what: "a promise where a callback's void return is expected",
    tool: "eslint",
    rule: "@typescript-eslint/no-misused-promises",
    files: {
      "src/tree/misused.ts":
        'import { readText } from "../io/files.js";\n\nexport function readAll(paths: string[]): void {\n  paths.forEach(async (p) => {\n    await readText(p);\n  });\n}\n',
    },
  },
  {
    what: "`any` from a parser leaking into typed code",
    tool: "eslint",
    rule: "@typescript-eslint/no-unsafe-assignment",
    files: {
      "src/model/parse.ts":
        "export function versionOf(text: string): number {\n  const doc: { version: number } = JSON.parse(text);\n  return doc.version;\n}\n",
    },
  },
  {
    what: "code Prettier would format differently",
    tool: "prettier",
    rule: "src/model/ugly.ts",
    files: { "src/model/ugly.ts": "export const ugly = ( a:number )=>{ return a+1 }\n" },
  },
];

let base: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "si-lint-"));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A scratch project: the repository's configs, node_modules, CLEAN and `extra`. */
function project(name: string, extra: Record<string, string>): string {
  const dir = join(base, name);
  mkdirSync(dir);
  for (const c of CONFIGS) cpSync(join(REPO, c), join(dir, c));
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  for (const [path, text] of Object.entries({ ...CLEAN, ...extra })) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** Runs one tool the way `npm run lint` does; its exit status and output. */
function run(dir: string, tool: Probe["tool"]): { status: number | null; out: string } {
  const bin = join(dir, "node_modules/.bin");
  const argv: Record<Probe["tool"], string[]> = {
    prettier: [join(bin, "prettier"), "--check", "src"],
    eslint: [join(bin, "eslint"), "src"],
    depcruise: [join(bin, "depcruise"), "src", "--config", ".dependency-cruiser.cjs"],
  };
  const [cmd, ...args] = argv[tool];
  const r = spawnSync(cmd, args, { cwd: dir, encoding: "utf8", timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("npm run lint's rules", () => {
  it("pass a project that breaks none of them (every tool)", () => {
    const dir = project("clean", {});
    for (const tool of ["prettier", "eslint", "depcruise"] as const) {
      const r = run(dir, tool);
      expect(r.status, `${tool}:\n${r.out}`).toBe(0);
    }
  }, 180_000);

  it.each(PROBES.map((p) => [p.what, p] as const))(
    "fail on %s",
    (_what, probe) => {
      const dir = project(probe.rule.replace(/[^a-z0-9]+/gi, "-"), probe.files);
      const r = run(dir, probe.tool);
      expect(r.status, r.out).not.toBe(0);
      expect(r.out).toContain(probe.rule);
    },
    180_000,
  );
});
