/**
 * Typed, line-aware lookups in a parsed config (server-reference §4.2 value rules), shared by
 * the loader (load.ts). Two things make strict config possible: every lookup is recorded per
 * section kind (what the loader reads is what is known, strict.ts), and a bad value is
 * recorded rather than thrown (soft()), so one run reports every problem of the file.
 */
import { ConfigError, type PyKind } from "../errors.js";
import { pyStrip, pyStripChars, type IniOption, type IniSection } from "./ini.js";
import { sectionKind, type SectionKind } from "./strict.js";

/**
 * §4.2 post-processing of a raw value: one containing ", " becomes a list (each element
 * stripped of `"` then whitespace); anything else a string stripped the same way.
 * "a,b" (no space) stays one string: that is how `device,mako` entry names survive.
 */
export function pyValue(raw: string): string | string[] {
  if (raw.includes(", ")) return raw.split(", ").map((e) => pyStrip(pyStripChars(e, '"')));
  return pyStrip(pyStripChars(raw, '"'));
}

/** Several problems in one config file, in line order; the message has one line for each. */
export class ConfigErrors extends ConfigError {
  constructor(readonly errors: ConfigError[]) {
    super(errors.map((e) => e.message).join("\n"), errors[0].kind);
  }
}

/** The problems of a ConfigError: its own list when it carries several, else itself. */
export function configProblems(err: ConfigError): ConfigError[] {
  return err instanceof ConfigErrors ? err.errors : [err];
}

/** Line of each error `fail` threw, to report collected problems in file order. */
const LINES = new WeakMap<ConfigError, number>();

/** Looks values up with their line numbers and builds precise errors. */
export class ConfigReader {
  /** Keys looked up, per section kind (absent ones too): what the strict check accepts. */
  readonly seen = new Map<SectionKind, Set<string>>();
  /** Problems met so far; see soft(). */
  readonly problems: { line: number; error: ConfigError }[] = [];

  constructor(
    readonly file: string,
    readonly sections: Map<string, IniSection>,
  ) {}

  fail(line: number, message: string, kind: PyKind, section?: string, key?: string): never {
    const where = section === undefined ? "" : key === undefined ? `[${section}] ` : `[${section}] ${key}: `;
    const err = new ConfigError(`${this.file}:${line}: ${where}${message}`, kind);
    LINES.set(err, line);
    throw err;
  }

  /** `read()`, or `fallback` after recording its ConfigError, so later keys are still checked. */
  soft<T>(fallback: T, read: () => T): T {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.problems.push({ line: LINES.get(err) ?? 0, error: err });
      return fallback;
    }
  }

  opt(section: string, key: string): IniOption | undefined {
    const kind = sectionKind(section);
    if (kind !== undefined) {
      const keys = this.seen.get(kind) ?? new Set<string>();
      this.seen.set(kind, keys.add(key));
    }
    return this.sections.get(section)?.options.get(key);
  }

  /** A single-valued key; a list (", " in the value) is refused. */
  str(section: string, key: string): string | undefined {
    return this.soft(undefined, () => this.one(section, key));
  }

  /** str() that throws its error. */
  one(section: string, key: string): string | undefined {
    const o = this.opt(section, key);
    if (!o) return undefined;
    const v = pyValue(o.value);
    if (Array.isArray(v)) {
      this.fail(o.line, `expected one value, got a list (the value contains ", "): '${o.value}'`, "ValueError", section, key);
    }
    return v;
  }

  /** A list key: a plain string becomes a one-element list, as in the reference. */
  list(section: string, key: string): { names: string[]; line: number } | undefined {
    const o = this.opt(section, key);
    if (!o) return undefined;
    const v = pyValue(o.value);
    return { names: Array.isArray(v) ? v : [v], line: o.line };
  }

  /**
   * Python `int()` (ASCII digits, sign, `_` between digits), also bounded to [min, max].
   * Errors name the section the key was looked up in, at the line that set it.
   */
  int(section: string, key: string, fallback: number, min: number, max: number): number {
    const o = this.opt(section, key);
    if (!o) return fallback;
    return this.soft(fallback, () => {
      const text = this.one(section, key)!;
      if (!/^[+-]?\d+(?:_\d+)*$/.test(text)) this.fail(o.line, `invalid integer '${text}'`, "ValueError", section, key);
      const n = Number(text.replace(/_/g, ""));
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        this.fail(o.line, `${text} is out of range (${min}-${max})`, "ValueError", section, key);
      }
      return n;
    });
  }

  /** configparser's getboolean(): 1/yes/true/on, 0/no/false/off, any case. */
  bool(section: string, key: string, fallback: boolean): boolean {
    const o = this.opt(section, key);
    if (!o) return fallback;
    return this.soft(fallback, () => {
      const text = this.one(section, key)!;
      if (["1", "yes", "true", "on"].includes(text.toLowerCase())) return true;
      if (["0", "no", "false", "off"].includes(text.toLowerCase())) return false;
      this.fail(o.line, `Not a boolean: ${text}`, "ValueError", section, key);
    });
  }
}
