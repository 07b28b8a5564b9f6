/**
 * Access logs → AccessRecord, line by line:
 * - `si`: si serve's JSON lines (src/server/log.ts accessEntry); other events (warnings,
 *   `listening`) are skipped, not errors;
 * - `json`: nginx's `log_format si_json` (src/deploy/nginx-site.ts), the same field names;
 * - `combined`: nginx's default format. It has no Range and no completion: see
 *   downloadOutcome for what is counted then;
 * - `auto`: JSON when the line starts with `{`, else combined.
 * A line that is none of these yields an error string (the caller counts it with its number).
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { AccessRecord } from "./records.js";

export type LogFormat = "si" | "json" | "combined" | "auto";
export const LOG_FORMATS: LogFormat[] = ["auto", "si", "json", "combined"];

/** A record, null for a line that is not an access (si serve's other events, blank lines), or why it is bad. */
export type ParsedLine = AccessRecord | null | { error: string };

/** Longest line looked at: an access line is a few hundred bytes; beyond this it is not one. */
const MAX_LINE = 64 * 1024;

const str = (v: unknown) => (typeof v === "string" ? v : v === null || v === undefined ? "" : undefined);
const int = (v: unknown) => (typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : undefined);

function parseJsonLine(line: string, format: LogFormat): ParsedLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { error: "not valid JSON" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { error: "not a JSON object" };
  const o = v as Record<string, unknown>;
  if (format !== "json" && o.event !== undefined && o.event !== "access") return null;
  const method = str(o.method);
  const path = str(o.path);
  const status = int(o.status);
  const bytes = int(o.bytes);
  const remote = str(o.remote);
  const userAgent = str(o.user_agent);
  const range = str(o.range);
  if (
    !method ||
    path === undefined ||
    status === undefined ||
    bytes === undefined ||
    remote === undefined ||
    userAgent === undefined ||
    range === undefined
  )
    return { error: "missing or mistyped field (method, path, status, bytes, range, remote, user_agent)" };
  if (!Number.isSafeInteger(bytes) || bytes < 0 || !Number.isInteger(status) || status < 100 || status > 999)
    return { error: "status or bytes out of range" };
  const aborted = o.aborted === true || o.aborted === "true";
  return {
    method,
    path,
    status,
    bytes,
    range: range === "" || range === "-" ? null : range,
    aborted,
    remote,
    userAgent,
    time: Date.parse(str(o.time) ?? ""),
  };
}

/** `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"` */
const COMBINED = /^(\S+) \S+ .*?\[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"/;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `07/Dec/2026:02:29:04 +0000` → ms. */
function timeLocal(s: string): number {
  const m = /^(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s);
  const month = m ? MONTHS.indexOf(m[2]) : -1;
  if (!m || month < 0) return NaN;
  const offset = (m[7] === "-" ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9])) * 60_000;
  return Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) - offset;
}

/** nginx escapes `"`, `\` and bytes outside printable ASCII as `\xHH` in combined lines. */
const unescapeNginx = (s: string) => s.replace(/\\x([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

function parseCombinedLine(line: string): ParsedLine {
  const m = COMBINED.exec(line);
  if (!m) return { error: "not an nginx combined line" };
  const request = unescapeNginx(m[3]).split(" ");
  if (request.length < 2) return { error: "no method and path in the request line" };
  return {
    method: request[0],
    path: request[1],
    status: Number(m[4]),
    bytes: m[5] === "-" ? 0 : Number(m[5]),
    range: undefined,
    aborted: false,
    remote: m[1],
    userAgent: m[6] === "-" ? "" : unescapeNginx(m[6]),
    time: timeLocal(m[2]),
  };
}

export function parseLine(line: string, format: LogFormat): ParsedLine {
  if (line.length > MAX_LINE) return { error: `longer than ${MAX_LINE} characters` };
  const text = line.trim();
  if (text === "") return null;
  if (format === "combined") return parseCombinedLine(text);
  if (format === "auto" && !text.startsWith("{")) return parseCombinedLine(text);
  return parseJsonLine(text, format);
}

export interface BadLine {
  file: string;
  line: number;
  error: string;
}

/** Bad lines met: how many, and the first few (a log of garbage must not fill memory). */
export interface BadLines {
  count: number;
  first: BadLine[];
}

const KEEP_BAD = 20;

/**
 * The access records of log files, streamed (memory does not grow with the log), in order.
 * Bad lines are counted in `bad` (the first ones with file and line number) and skipped.
 */
export async function* readAccessLogs(files: string[], format: LogFormat, bad: BadLines): AsyncGenerator<AccessRecord> {
  for (const file of files) {
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    let n = 0;
    for await (const line of lines) {
      n++;
      const parsed = parseLine(line, format);
      if (parsed === null) continue;
      if (!("error" in parsed)) {
        yield parsed;
        continue;
      }
      bad.count++;
      if (bad.first.length < KEEP_BAD) bad.first.push({ file, line: n, error: parsed.error });
    }
  }
}
