/**
 * The Debian mirrors this machine's apt already uses, read from its sources (issue 19: the
 * bench must not write a registry's host name in code). Both formats are read: deb822
 * `/etc/apt/sources.list.d/*.sources` (`URIs:` + `Suites:`) and one-line
 * `/etc/apt/sources.list{,.d/*.list}` (`deb URI SUITE ...`).
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface AptMirrors {
  /** Serves the release suites (e.g. bookworm, bookworm-updates). */
  main: string;
  /** Serves `<release>-security`; undefined when the sources name none. */
  security?: string;
}

interface Entry {
  uri: string;
  suites: string[];
}

function entries(root: string): Entry[] {
  const out: Entry[] = [];
  const dir = join(root, "etc/apt/sources.list.d");
  const files = [
    join(root, "etc/apt/sources.list"),
    ...(existsSync(dir)
      ? readdirSync(dir)
          .sort()
          .map((f) => join(dir, f))
      : []),
  ];
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    if (file.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "mi").exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (!field("Types").includes("deb") || /^Enabled:\s*no/im.test(stanza)) continue;
        for (const uri of field("URIs")) out.push({ uri, suites: field("Suites") });
      }
    } else if (file.endsWith(".list") || file.endsWith("sources.list")) {
      for (const line of text.split("\n")) {
        // deb [options] URI SUITE COMPONENT...
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m) out.push({ uri: m[1], suites: [m[2]] });
      }
    }
  }
  return out;
}

/** The mirrors for `release` (e.g. "bookworm"); throws when the sources name none. */
export function aptMirrors(release: string, root = "/"): AptMirrors {
  const all = entries(root);
  const main = all.find((e) => e.suites.includes(release)) ?? all.find((e) => e.suites.some((s) => !s.endsWith("-security")));
  if (!main)
    throw new Error(
      `Cannot find a Debian mirror: no "deb" source for ${release} in ${join(root, "etc/apt")} (sources.list or sources.list.d/*.sources)`,
    );
  const sec = all.find((e) => e.suites.includes(`${release}-security`));
  return { main: main.uri.replace(/\/+$/, ""), ...(sec ? { security: sec.uri.replace(/\/+$/, "") } : {}) };
}
