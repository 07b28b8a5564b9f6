/**
 * `--input DIR` of the bench commands: a pair of rootfs tarballs, v1 then v2, as either
 *   - exactly two `*.tar.xz` in DIR, in name order (`a.tar.xz`, `b.tar.xz` as made by
 *     ../shared/reference/perf-data, or `rootfs-v1.tar.xz`, `rootfs-v2.tar.xz`), or
 *   - `DIR/v1/*.tar.xz` and `DIR/v2/*.tar.xz`, one file each (the reference scripts' layout).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const xzIn = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".tar.xz") && statSync(join(dir, f)).isFile())
    .sort();

export function findPair(dir: string): { v1: string; v2: string } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--input ${dir}: not a directory`);
  const sub = (v: string) => join(dir, v);
  if (existsSync(sub("v1")) && existsSync(sub("v2"))) {
    const [a, b] = [xzIn(sub("v1")), xzIn(sub("v2"))];
    if (a.length !== 1 || b.length !== 1)
      throw new Error(`--input ${dir}: expected one *.tar.xz in each of v1/ and v2/, found ${a.length} and ${b.length}`);
    return { v1: join(sub("v1"), a[0]), v2: join(sub("v2"), b[0]) };
  }
  const xz = xzIn(dir);
  if (xz.length !== 2)
    throw new Error(
      `--input ${dir}: expected exactly two *.tar.xz files (v1, v2 in name order) or v1/ and v2/ subdirectories, found ${xz.length} .tar.xz: ${xz.join(", ") || "none"}`,
    );
  return { v1: join(dir, xz[0]), v2: join(dir, xz[1]) };
}
