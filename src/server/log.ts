/**
 * Server log: one JSON object per line on stdout (access lines and warnings alike), so that
 * journald, `jq` or a log shipper can read it without a parser of our own.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestRecord } from "./static-files.js";

export type LogEntry = Record<string, unknown>;

/** Where log entries go; tests inject one that collects them. */
export interface ServerLogger {
  log(entry: LogEntry): void;
  /** Writes out anything buffered (called on shutdown). */
  flush?(): void;
}

/**
 * Writes up to this many bytes at once: pipe and socket writes up to PIPE_BUF are atomic, so
 * lines from several worker processes sharing one stdout never interleave mid-line.
 */
const ATOMIC_WRITE = 4096;

/**
 * Writes JSON lines through `write`, batched per event-loop turn: under load that is one
 * write for many requests instead of one syscall each. `write` gets whole lines joined by
 * "\n", without the final newline (the shape of CliContext.out).
 */
export function jsonLineLogger(write: (lines: string) => void): ServerLogger {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    let start = 0;
    let size = 0;
    for (let i = 0; i < lines.length; i++) {
      const n = Buffer.byteLength(lines[i]) + 1;
      if (size + n > ATOMIC_WRITE && i > start) {
        write(lines.slice(start, i).join("\n"));
        start = i;
        size = 0;
      }
      size += n;
    }
    write(lines.slice(start).join("\n"));
  };
  return {
    log(entry) {
      pending.push(JSON.stringify(entry.time === undefined ? { time: new Date().toISOString(), ...entry } : entry));
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** Keeps absurd request targets (up to Node's header limit) from bloating every log line. */
const MAX_LOGGED = 1024;
const clip = (s: string | undefined) => (s !== undefined && s.length > MAX_LOGGED ? s.slice(0, MAX_LOGGED) + "…" : s);

/** The access-log entry of one finished (or aborted) response. */
export function accessEntry(listener: string, req: IncomingMessage, res: ServerResponse, rec: RequestRecord, startedMs: number): LogEntry {
  const entry: LogEntry = {
    time: new Date().toISOString(),
    level: "info",
    event: "access",
    listener,
    method: req.method,
    path: clip(req.url),
    status: res.statusCode,
    bytes: rec.bytes,
    duration_ms: Math.round((performance.now() - startedMs) * 1000) / 1000,
    remote: req.socket.remoteAddress,
    user_agent: clip(req.headers["user-agent"]) ?? null,
    range: clip(req.headers.range) ?? null,
  };
  // The client went away before the whole body was sent (a cancelled download).
  if (!res.writableFinished) entry.aborted = true;
  return entry;
}
