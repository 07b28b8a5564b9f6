/**
 * Strict config (issue 15 item 1): a section or key the server does not read is an error,
 * not a silent default. `fulcount = 5` would otherwise keep every image, and a `[globl]`
 * section would leave base_path at the working directory and serve another tree.
 *
 * What is "known" is not a hand-written list: it is every key the loader (load.ts) looks up
 * in a section of that kind, so a key added to the loader is accepted with no list to update.
 * Keys and sections starting with `x_` are left alone, for other tools sharing the file.
 */
import type { IniDocument, IniOption } from "./ini.js";

/** Prefix of keys (and sections) the server ignores, documented in etc/config.example. */
export const IGNORED_PREFIX = "x_";

/** The section kinds of server-reference §4.2 (`[DEFAULT]` is handled by the INI reader). */
export type SectionKind = "global" | "mirror_default" | "mirror" | "channel";
const KINDS: readonly SectionKind[] = ["global", "mirror_default", "mirror", "channel"];
const KIND_LABEL: Record<SectionKind, string> = {
  global: "the [global] section",
  mirror_default: "the [mirror_default] section",
  mirror: "a [mirror_<name>] section",
  channel: "a [channel_<name>] section",
};

export function sectionKind(name: string): SectionKind | undefined {
  if (name === "global" || name === "mirror_default") return name;
  if (name.startsWith("mirror_")) return "mirror";
  if (name.startsWith("channel_")) return "channel";
  return undefined;
}

export interface Schema {
  /** Keys the loader looks up, per section kind. */
  keys: ReadonlyMap<SectionKind, ReadonlySet<string>>;
  /** A prefix after which any name is accepted (`file_` entries of a channel). */
  prefixes: Partial<Record<SectionKind, string>>;
}

export interface Problem {
  line: number;
  /** `[section] key: ...`, without the `file:line: ` prefix. */
  message: string;
}

/**
 * Every unknown section and key of `doc`, in file order. `listed` names the mirrors and
 * channels `[global]` lists, so that `[chanel_devel]` can be answered with `channel_devel`.
 */
export function strictProblems(doc: IniDocument, schema: Schema, listed: { mirrors: string[]; channels: string[] }): Problem[] {
  const problems: Problem[] = [];
  const known = (kind: SectionKind, key: string) =>
    key.startsWith(IGNORED_PREFIX) || schema.keys.get(kind)?.has(key) === true || key.startsWith(schema.prefixes[kind] ?? "\0");
  const unknownKey = (section: string, o: IniOption, kinds: readonly SectionKind[]) => {
    // A key that is right but in the wrong section says where it belongs (`fullcount` in
    // [global]); only then a near miss among this section's keys (`fulcount`).
    const elsewhere = KINDS.filter((k) => !kinds.includes(k) && known(k, o.name));
    const candidates = kinds.flatMap((k) => [...(schema.keys.get(k) ?? [])]);
    const near = elsewhere.length === 0 ? didYouMean(o.name, candidates) : undefined;
    const hint =
      elsewhere.length > 0
        ? `; it belongs in ${elsewhere.map((k) => KIND_LABEL[k]).join(" or ")}`
        : near !== undefined
          ? `; did you mean '${near}'?`
          : ` (keys read by other tools must start with '${IGNORED_PREFIX}')`;
    problems.push({ line: o.line, message: `[${section}] ${o.name}: unknown key${hint}` });
  };

  const sectionNames = [
    "global",
    "mirror_default",
    "DEFAULT",
    ...listed.mirrors.map((m) => `mirror_${m}`),
    ...listed.channels.map((c) => `channel_${c}`),
  ];
  for (const section of doc.sections.values()) {
    if (section.name.startsWith(IGNORED_PREFIX)) continue;
    const kind = sectionKind(section.name);
    if (kind === undefined) {
      // `[chanel_devel]` is answered with `channel_devel` even when devel is not listed.
      const rest = section.name.slice(section.name.indexOf("_") + 1);
      const near = didYouMean(section.name, [...sectionNames, `channel_${rest}`, `mirror_${rest}`]);
      const hint =
        near !== undefined
          ? `; did you mean '${near}'?`
          : ` (sections: global, mirror_default, mirror_<name>, channel_<name>, DEFAULT; '${IGNORED_PREFIX}' sections are ignored)`;
      problems.push({ line: section.line, message: `[${section.name}]: unknown section${hint}` });
      continue;
    }
    for (const o of section.options.values()) {
      // Options inherited from [DEFAULT] are checked once, below, where they are written.
      if (!o.inherited && !known(kind, o.name)) unknownKey(section.name, o, [kind]);
    }
  }
  // A [DEFAULT] option reaches every section, so it needs to be known in one of them.
  for (const o of doc.defaults?.options.values() ?? []) {
    if (!KINDS.some((k) => known(k, o.name))) unknownKey("DEFAULT", o, KINDS);
  }
  return problems.sort((a, b) => a.line - b.line);
}

/**
 * The candidate closest to `word` when it is close enough to be a typo: the same name in
 * another case, or within an edit distance (transpositions count once) of about a quarter
 * of its length, at most 3. Ties go to the first candidate in code-point order.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const sorted = [...new Set(candidates)].sort();
  const lower = word.toLowerCase();
  const sameCase = sorted.find((c) => c.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 4)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of sorted) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length][b.length];
}
