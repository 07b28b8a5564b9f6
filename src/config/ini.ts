/**
 * An INI reader with exactly the semantics of Python's `configparser.ConfigParser` as the
 * reference configures it (server-reference §4.2): interpolation off, case-preserving option
 * names, `=` and `:` delimiters, full-line `#`/`;` comments only, indented lines continue the
 * previous value, `[DEFAULT]` options inherited by every section.
 *
 * Unlike the reference, which swallows parser errors and reads the file as empty, every
 * syntax problem is a ConfigError naming the file and line: a silently empty config would
 * publish with default paths and no channels.
 */
import { ConfigError } from "../errors.js";

export interface IniOption {
  name: string;
  /** Raw value: continuation lines joined with "\n", trailing whitespace removed. */
  value: string;
  /** 1-based line of the `key = value` line. */
  line: number;
  /** Set when the option comes from `[DEFAULT]` (its line is then a `[DEFAULT]` line). */
  inherited?: true;
}

export interface IniSection {
  name: string;
  /** 1-based line of the `[name]` header. */
  line: number;
  /** Own options, then inherited `[DEFAULT]` ones (configparser's `options()` order). */
  options: Map<string, IniOption>;
}

export interface IniDocument {
  /** Sections in file order; `DEFAULT` is not among them (as in `sections()`). */
  sections: Map<string, IniSection>;
  /** The `[DEFAULT]` section with its own options, when the file has one. */
  defaults?: IniSection;
}

/** Characters Python's `str.strip()` and `\s` treat as whitespace (str.isspace). */
const PY_WS = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const LEADING_WS = new RegExp(`^[${PY_WS}]+`);
const TRAILING_WS = new RegExp(`[${PY_WS}]+$`);
const NON_SPACE = new RegExp(`[^${PY_WS}]`);

/** Python `s.strip()`. */
export function pyStrip(s: string): string {
  return s.replace(LEADING_WS, "").replace(TRAILING_WS, "");
}

/** Python `s.strip(chars)` for a set of literal characters. */
export function pyStripChars(s: string, chars: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && chars.includes(s[start])) start++;
  while (end > start && chars.includes(s[end - 1])) end--;
  return s.slice(start, end);
}

/** configparser's SECTCRE `\[(?P<header>.+)\]`, matched at the start of the stripped line. */
const SECTION_RE = /^\[(.+)\]/;
const DEFAULT_SECTION = "DEFAULT";

interface RawOption {
  name: string;
  parts: string[];
  line: number;
}

interface RawSection {
  name: string;
  line: number;
  options: Map<string, RawOption>;
}

function fail(file: string, line: number, message: string): never {
  throw new ConfigError(`${file}:${line}: ${message}`, "Exception");
}

/** Parses INI text; `file` is only used in error messages. */
export function parseIni(text: string, file: string): IniDocument {
  // Python's universal newlines; a UTF-8 BOM is tolerated (configparser would choke on it).
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();

  const sections = new Map<string, RawSection>();
  let defaults: RawSection | undefined;
  let current: RawSection | undefined;
  let option: RawOption | undefined;
  let indentLevel = 0;

  lines.forEach((raw, index) => {
    const lineno = index + 1;
    const stripped = pyStrip(raw);
    const isComment = stripped.startsWith("#") || stripped.startsWith(";");
    if (isComment || stripped === "") {
      // empty_lines_in_values=True: a blank line (not a comment) is kept inside a value
      // in case an indented continuation follows; trailing ones are trimmed at the end.
      if (!isComment && current && option) option.parts.push("");
      return;
    }
    const indent = raw.search(NON_SPACE);
    if (current && option && indent > indentLevel) {
      option.parts.push(stripped);
      return;
    }
    indentLevel = indent;
    const header = SECTION_RE.exec(stripped);
    if (header) {
      const name = header[1];
      option = undefined;
      if (name === DEFAULT_SECTION) {
        // configparser allows [DEFAULT] to be reopened; duplicate options still fail below.
        defaults ??= { name, line: lineno, options: new Map() };
        current = defaults;
        return;
      }
      const seen = sections.get(name);
      if (seen) fail(file, lineno, `duplicate section [${name}] (first defined at line ${seen.line})`);
      current = { name, line: lineno, options: new Map() };
      sections.set(name, current);
      return;
    }
    if (!current) {
      fail(file, lineno, `File contains no section headers: line before any [section]: '${stripped}'`);
    }
    // OPTCRE: the option name is everything before the FIRST `=` or `:`.
    const delim = stripped.search(/[=:]/);
    if (delim < 0) fail(file, lineno, `[${current.name}] expected 'key = value', got '${stripped}'`);
    const name = pyStrip(stripped.slice(0, delim));
    if (name === "") fail(file, lineno, `[${current.name}] missing option name before '${stripped[delim]}'`);
    const seen = current.options.get(name);
    if (seen) {
      fail(file, lineno, `[${current.name}] ${name}: duplicate option (first set at line ${seen.line})`);
    }
    option = { name, parts: [pyStrip(stripped.slice(delim + 1))], line: lineno };
    current.options.set(name, option);
  });

  const result = new Map<string, IniSection>();
  for (const section of sections.values()) {
    const options = new Map<string, IniOption>();
    for (const o of section.options.values()) options.set(o.name, finish(o));
    for (const o of defaults?.options.values() ?? []) {
      if (!options.has(o.name)) options.set(o.name, { ...finish(o), inherited: true });
    }
    result.set(section.name, { name: section.name, line: section.line, options });
  }
  if (!defaults) return { sections: result };
  const own = new Map([...defaults.options.values()].map((o) => [o.name, finish(o)]));
  return { sections: result, defaults: { name: defaults.name, line: defaults.line, options: own } };
}

/** `_join_multiline_values`: join with newlines, then rstrip. */
function finish(o: RawOption): IniOption {
  return { name: o.name, value: o.parts.join("\n").replace(TRAILING_WS, ""), line: o.line };
}
