/**
 * Issue 15 item 6: the delta step (~11 s on real images) showed nothing on a terminal. Now
 * the generator shows how much of the new image it has read, on the progress line a terminal
 * command installs (si import-images: io/progress.ts setProgressSink), and nothing without
 * one (services, pipes, the scheduler's child). The terminal is a fake TTY stream here.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { generateDelta } from "../../src/generators/index.js";
import { setProgressSink, terminalProgress } from "../../src/io/progress.js";
import { cleanupAll, genInstance, tarOf, tree } from "../generators/fixtures.js";

afterAll(cleanupAll);
afterEach(() => setProgressSink(undefined));

/** A stream that says it is a terminal and keeps what is written to it. */
function fakeTerminal(isTTY = true): { stream: NodeJS.WriteStream; writes: string[] } {
  const writes: string[] = [];
  const stream = { isTTY, columns: 120, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

/** Two images of a few MB (random bytes: xz cannot shrink them, so the new one is ~3 MB on disk). */
async function twoImages(bytes = 1 << 20) {
  const g = await genInstance();
  const dir = join(g.config.base_path, "in");
  mkdirSync(dir);
  const same = randomBytes(bytes);
  const xz = (files: Record<string, Buffer>) => execFileSync("xz", ["-0", "-c"], { input: tarOf(tree(files), "none"), maxBuffer: 1 << 26 });
  writeFileSync(join(dir, "ubports-old.tar.xz"), xz({ "system/same": same, "system/a": randomBytes(bytes) }));
  writeFileSync(
    join(dir, "ubports-new.tar.xz"),
    xz({ "system/same": same, "system/a": randomBytes(bytes), "system/b": randomBytes(bytes) }),
  );
  return { g, oldPath: join(dir, "ubports-old.tar.xz"), newPath: join(dir, "ubports-new.tar.xz") };
}

// `\r\x1b[K<label> [<bar>] <read> / <total> MB  <speed> MB/s`, terminalProgress's line.
const LINE = /^\r\x1b\[K(.+?) \[[# ]+\] (\d+\.\d) \/ (\d+\.\d) MB {2}\d+\.\d MB\/s$/;

describe("delta progress on a terminal", () => {
  it("shows the bytes of the new image read, against its size, then clears the line", async () => {
    const { g, oldPath, newPath } = await twoImages();
    const term = fakeTerminal();
    setProgressSink(terminalProgress(term.stream));
    await generateDelta(g.ctx, oldPath, newPath);

    const lines = term.writes.filter((w) => w !== "\r\x1b[K");
    expect(lines.length).toBeGreaterThan(0);
    const size = (statSync(newPath).size / 1e6).toFixed(1);
    expect(Number(size)).toBeGreaterThan(2.5);
    const read: number[] = [];
    for (const line of lines) {
      const m = LINE.exec(line);
      expect(m, JSON.stringify(line)).not.toBeNull();
      expect(m![1]).toBe("delta ubports-new"); // the new image only, not the old one
      expect(m![3]).toBe(size);
      read.push(Number(m![2]));
    }
    // One pass over the new image: the figure only grows, and it ends past the first block.
    expect(read).toEqual([...read].sort((a, b) => a - b));
    expect(read.at(-1)).toBeGreaterThan(0);
    expect(read.at(-1)).toBeLessThanOrEqual(Number(size));
    expect(term.writes.at(-1)).toBe("\r\x1b[K");
  });

  it("draws nothing when no terminal command asked for progress, or when stderr is not a terminal", async () => {
    const { g, oldPath, newPath } = await twoImages(1 << 14);
    const pipe = fakeTerminal(false);
    setProgressSink(terminalProgress(pipe.stream));
    const first = await generateDelta(g.ctx, oldPath, newPath);
    expect(pipe.writes).toEqual([]);

    const { g: g2, oldPath: o2, newPath: n2 } = await twoImages(1 << 14);
    const term = fakeTerminal();
    terminalProgress(term.stream); // made, but not installed as the sink
    setProgressSink(undefined);
    await generateDelta(g2.ctx, o2, n2);
    expect(term.writes).toEqual([]);
    expect(first.endsWith("ubports-new.delta-ubports-old.tar.xz")).toBe(true);
  });
});
