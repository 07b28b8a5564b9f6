/**
 * Reads systemd unit files (and drop-ins) and answers "can this service read / write this
 * path?" from their sandbox settings, without a running systemd (none in containers or CI).
 *
 * What is modelled (systemd.exec(5), systemd 252 src/core/namespace.c):
 * - ProtectSystem=strict makes the whole file system read-only (yes/full: /usr, /boot, /efi,
 *   full adds /etc); ProtectHome=yes hides /home, /root and /run/user (read-only: read-only);
 *   PrivateTmp=yes gives a private writable /tmp and /var/tmp.
 * - ReadWritePaths=, ReadOnlyPaths=, InaccessiblePaths= (several per line, `-` and `+`
 *   prefixes, an empty assignment resets the list, drop-ins append in order).
 * - The deepest listed path that contains the one asked about decides; on the same path
 *   the most restrictive entry wins (namespace.c sorts equal paths by mode and keeps the
 *   first: inaccessible, then read-only, then read-write); nothing below an inaccessible
 *   path is reachable (drop_inaccessible()).
 * File permissions are a separate matter: the tests compare User=/Group= of the units.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

export type Access = "rw" | "ro" | "none";

export interface Unit {
  name: string;
  /** section → key → assignments in file order (drop-ins appended). */
  sections: Map<string, Map<string, string[]>>;
}

/** Parses one unit file's text into `into` (a fresh unit by default). */
export function parseUnit(text: string, name: string, into?: Unit): Unit {
  const unit = into ?? { name, sections: new Map<string, Map<string, string[]>>() };
  let section: Map<string, string[]> | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    // A trailing backslash continues the assignment on the next line (comment lines skipped).
    while (line.endsWith("\\") && i + 1 < lines.length) {
      const next = lines[++i].trim();
      if (next.startsWith("#") || next.startsWith(";")) continue;
      line = line.slice(0, -1) + " " + next;
    }
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      if (!unit.sections.has(header[1])) unit.sections.set(header[1], new Map());
      section = unit.sections.get(header[1]);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !section) throw new Error(`${name}:${i + 1}: not an assignment: ${line}`);
    const key = line.slice(0, eq).trim();
    if (!section.has(key)) section.set(key, []);
    section.get(key)!.push(line.slice(eq + 1).trim());
  }
  return unit;
}

/** A unit file plus its `<name>.d/*.conf` drop-ins (in name order), if `withDropIns`. */
export function loadUnit(dir: string, name: string, withDropIns: boolean): Unit {
  const unit = parseUnit(readFileSync(join(dir, name), "utf8"), name);
  const dropDir = join(dir, `${name}.d`);
  if (withDropIns && existsSync(dropDir)) {
    for (const f of readdirSync(dropDir)
      .filter((n) => n.endsWith(".conf"))
      .sort()) {
      parseUnit(readFileSync(join(dropDir, f), "utf8"), `${name}.d/${f}`, unit);
    }
  }
  return unit;
}

/** Assignments of a key after the last empty one (systemd's list reset). */
export function values(unit: Unit, section: string, key: string): string[] {
  const all = unit.sections.get(section)?.get(key) ?? [];
  const reset = all.lastIndexOf("");
  return all.slice(reset + 1);
}

/** The single value of a key (the last assignment wins), or undefined. */
export function value(unit: Unit, section: string, key: string): string | undefined {
  const all = unit.sections.get(section)?.get(key);
  return all?.[all.length - 1];
}

const isTrue = (v: string | undefined) => v !== undefined && ["yes", "true", "on", "1"].includes(v);

interface Entry {
  path: string;
  access: Access;
}

/** Space-separated paths of a path-list setting, `-`/`+` prefixes removed. */
function pathList(unit: Unit, key: string): string[] {
  return values(unit, "Service", key)
    .flatMap((v) => v.split(/\s+/))
    .filter((p) => p !== "")
    .map((p) => p.replace(/^[-+]+/, "").replace(/\/+$/, "") || "/");
}

const RANK: Record<Access, number> = { none: 0, ro: 1, rw: 2 };

function within(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(dir + "/");
}

/** Whether the service `unit` can read ("ro"), read and write ("rw") or not reach ("none") `path`. */
export function accessOf(unit: Unit, path: string): Access {
  const entries: Entry[] = [];
  const protect = value(unit, "Service", "ProtectSystem");
  if (protect === "strict") entries.push({ path: "/", access: "ro" });
  else if (isTrue(protect) || protect === "full") {
    for (const p of ["/usr", "/boot", "/efi", ...(protect === "full" ? ["/etc"] : [])]) entries.push({ path: p, access: "ro" });
  }
  const home = value(unit, "Service", "ProtectHome");
  if (isTrue(home) || home === "tmpfs" || home === "read-only") {
    for (const p of ["/home", "/root", "/run/user"]) entries.push({ path: p, access: home === "read-only" ? "ro" : "none" });
  }
  if (isTrue(value(unit, "Service", "PrivateTmp"))) entries.push({ path: "/tmp", access: "rw" }, { path: "/var/tmp", access: "rw" });
  for (const p of pathList(unit, "ReadWritePaths")) entries.push({ path: p, access: "rw" });
  for (const p of pathList(unit, "ReadOnlyPaths")) entries.push({ path: p, access: "ro" });
  for (const p of pathList(unit, "InaccessiblePaths")) entries.push({ path: p, access: "none" });
  const covering = entries.filter((e) => within(path, e.path));
  if (covering.some((e) => e.access === "none")) return "none";
  let best: Entry | undefined;
  for (const e of covering) {
    if (!best || e.path.length > best.path.length || (e.path.length === best.path.length && RANK[e.access] < RANK[best.access])) best = e;
  }
  return best?.access ?? "rw";
}
