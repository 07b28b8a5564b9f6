/**
 * Where an instance's parts live (relative to its directory) and whether a directory already
 * holds one: `si init` must never overwrite somebody's keys or tree by accident.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../errors.js";

export const CONFIG_FILE = "etc/config";

/** What makes a directory an instance: its config, keys and keyrings, tree, state. */
const INSTANCE_PARTS = [CONFIG_FILE, "secret", "www", "state"];

/** The parts of an instance found in `dir`, directories with a `/` (an empty one counts as absent). */
export function existingInstanceParts(dir: string): string[] {
  const found: string[] = [];
  for (const part of INSTANCE_PARTS) {
    const p = join(dir, part);
    if (!existsSync(p)) continue;
    if (!statSync(p).isDirectory()) found.push(part);
    else if (readdirSync(p).length > 0) found.push(`${part}/`);
  }
  return found;
}

/** The shipped template, found from this module in src/ or dist/src/ alike. */
export function configTemplatePath(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(d, "etc/config.example");
    if (existsSync(candidate)) return candidate;
    const up = dirname(d);
    if (up === d) throw new ConfigError("Cannot find etc/config.example: it is not beside this installation's src/ or dist/");
    d = up;
  }
}
