import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { applyCheck } from "../helpers/apply-delta.js";
import { listTarWithPython, tempDir, writeTarWithPython, xzFile } from "../helpers/tar-fixtures.js";

const SI = resolve(import.meta.dirname, "../../bin/si.js");
const si = (cwd: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [SI, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, SI_CONFIG: "/nonexistent/config" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

function images(dir: string): [string, string] {
  const old = xzFile(
    writeTarWithPython(
      join(dir, "ubports-aaa.tar"),
      [
        { name: "system", type: "directory", mtime: 1 },
        { name: "system/keep", content: "same", mtime: 1 },
        { name: "system/edit", content: "AAAA", mtime: 1 },
        { name: "system/gone", content: "bye", mtime: 1 },
      ],
      "gnu",
    ),
  );
  const neu = xzFile(
    writeTarWithPython(
      join(dir, "ubports-bbb.tar"),
      [
        { name: "system", type: "directory", mtime: 1 },
        { name: "system/keep", content: "same", mtime: 1 },
        { name: "system/edit", content: "BBBB", mtime: 1 },
        { name: "system/new", content: "hi", mtime: 1 },
      ],
      "gnu",
    ),
  );
  return [old, neu];
}

describe("si diff", () => {
  it("writes <T>.delta-<S>.tar.xz in the current directory and prints a summary (no config needed)", () => {
    const dir = tempDir("si-diffcli-");
    const [old, neu] = images(dir);
    const r = si(dir, "diff", "--xz-level", "0", "--list", old, neu);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = join(dir, "ubports-bbb.delta-ubports-aaa.tar.xz");
    expect(existsSync(out)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.slice(0, 3)).toEqual([" - system/edit (mod)", " - system/gone (del)", " - system/new (add)"]);
    expect(lines).toContain(`delta: ${out}`);
    expect(lines).toContain("added: 1");
    expect(lines).toContain("changed: 1");
    expect(lines).toContain("removed: 1");
    expect(r.stdout).toMatch(/^uncompressed: 10240 bytes$/m);
    expect(r.stdout).toMatch(/^compressed: \d+ bytes$/m);
    expect(listTarWithPython(out).map((m) => [m.name, m.content])).toEqual([
      ["removed", "system/edit\nsystem/gone\n"],
      ["system/edit", "BBBB"],
      ["system/new", "hi"],
    ]);
    expect(applyCheck(old, neu, out)).toEqual([]);
  });

  it("--json prints the summary as JSON; -o chooses the file", () => {
    const dir = tempDir("si-diffcli-");
    const [old, neu] = images(dir);
    const out = join(dir, "custom.tar.xz");
    const r = si(dir, "diff", "--xz-level", "0", "--json", "-o", out, old, neu);
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      path: out,
      added: 1,
      changed: 1,
      deleted: 1,
      removedLines: 2,
      members: 2,
      uncompressedBytes: 10240,
      warnings: [],
    });
    expect(summary.compressedBytes).toBeGreaterThan(0);
    expect(summary.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("fails with one line naming the unreadable image", () => {
    const dir = tempDir("si-diffcli-");
    const [old] = images(dir);
    const r = si(dir, "diff", old, join(dir, "missing.tar.xz"));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^si: error: Cannot read image '.*missing\.tar\.xz': ENOENT/);
    expect(readdirSync(dir).filter((f) => f.includes("delta") || f.endsWith(".tmp"))).toEqual([]);
  });
});
