/**
 * si's own version, from package.json (issue 15 item 6: `si --version`, `si_build_info`).
 * Read once, at first use, from the package root: two levels up from src/ when run from the
 * sources (tests), three from dist/src/ when compiled.
 */
import { readFileSync } from "node:fs";

let cached: string | undefined;

export function siVersion(): string {
  if (cached !== undefined) return cached;
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "system-image-server-ts" && typeof pkg.version === "string") return (cached = pkg.version);
    } catch {
      // Not this level: try the next one.
    }
  }
  return (cached = "unknown");
}
