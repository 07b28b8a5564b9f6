/**
 * Structured logs: one JSON object per line for services and pipes; a short human form
 * (`I: devel/mako: ...`) on a terminal. Every command and the server log through this or
 * `src/server/log.ts`, with one set of field names:
 *   time   ISO 8601 UTC          level  debug | info | warn | error
 *   msg    the human sentence    event  (server lines) a stable kebab-case name to match on
 * then context fields: channel, device, version, component, trigger, step, duration_ms, ...
 */
export type Level = "debug" | "info" | "warn" | "error";
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const LETTER: Record<Level, string> = { debug: "D", info: "I", warn: "W", error: "E" };

export type Fields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  // Function properties, not methods: implementations are closures that need no `this`,
  // so a caller may pick one (`(ok ? log.info : log.error)(line)`).
  debug: (msg: string, fields?: Fields) => void;
  info: (msg: string, fields?: Fields) => void;
  warn: (msg: string, fields?: Fields) => void;
  error: (msg: string, fields?: Fields) => void;
  /** A logger that adds `fields` to every line. */
  child(fields: Fields): Logger;
}

export interface LoggerOptions {
  level?: Level;
  /** JSON lines (default: when the output is not a terminal). */
  json?: boolean;
  write?: (line: string) => void;
  clock?: () => Date;
}

export function createLogger(opts: LoggerOptions = {}, bound: Fields = {}): Logger {
  const level = opts.level ?? "info";
  const json = opts.json ?? !process.stdout.isTTY;
  const write = opts.write ?? ((line: string) => process.stdout.write(line + "\n"));
  const clock = opts.clock ?? (() => new Date());
  const emit = (lvl: Level, msg: string, fields?: Fields) => {
    if (RANK[lvl] < RANK[level]) return;
    const all = { ...bound, ...fields };
    if (json) {
      write(JSON.stringify({ time: clock().toISOString(), level: lvl, msg, ...all }));
      return;
    }
    const where = [all.channel, all.device].filter(Boolean).join("/");
    const extra = Object.entries(all)
      .filter(([k, v]) => v !== undefined && v !== null && k !== "channel" && k !== "device")
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    write(`${LETTER[lvl]}: ${where ? where + ": " : ""}${msg}${extra ? ` (${extra})` : ""}`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(opts, { ...bound, ...fields }),
  };
}

/** `-v` counts as in the reference tools: 0 errors only, 1 warnings, 2 info, 3+ debug. */
export function levelFromVerbosity(v: number, base = 2): Level {
  const n = v + base;
  return n <= 0 ? "error" : n === 1 ? "warn" : n === 2 ? "info" : "debug";
}
