/**
 * One finished response as the fleet counts it, whatever wrote it down (si serve's access
 * line, nginx's `si_json` or `combined` line, or si serve's live hook), and what it means for
 * a marker file: a download started, completed, both or neither. Pure.
 */
import type { Owner } from "./attribution.js";

export interface AccessRecord {
  method: string;
  /** The request target as sent (`/pool/x?y`, `//pool/x`); canonicalised by canonicalUrlPath. */
  path: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  /** The Range header; null = none was sent; undefined = the log does not say (nginx combined). */
  range?: string | null;
  /** The client went away before the body was sent (si serve; nginx `$request_completion`). */
  aborted: boolean;
  remote: string;
  userAgent: string;
  /** Milliseconds since the epoch; NaN when the line had no readable time. */
  time: number;
}

/**
 * Request target → the path the file server answers for it (as src/server/url-path.ts does:
 * absolute form, query and fragment dropped, one %-decoding, repeated slashes merged), or
 * undefined when the server would refuse it (so nothing was served).
 */
export function canonicalUrlPath(target: string): string | undefined {
  let path = target.replace(/^https?:\/\/[^/?#]*/i, "") || "/";
  const cut = path.search(/[?#]/);
  if (cut >= 0) path = path.slice(0, cut);
  if (!path.startsWith("/") || /[\x00-\x1f\x7f\\]/.test(path)) return undefined;
  const out: string[] = [];
  for (const raw of path.split("/")) {
    if (raw === "") continue;
    let s: string;
    try {
      s = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (/[\x00-\x1f\x7f/\\%]/.test(s) || s.startsWith(".")) return undefined;
    out.push(s);
  }
  return out.length === 0 || path.endsWith("/") ? undefined : "/" + out.join("/");
}

const UA_PREFIX = "Ubuntu System Image Upgrade Client:";

/**
 * The channel and device a system-image client names in its User-Agent (client-protocol §2:
 * `… device=<dev>;channel=<chan>;build=<n>`); channel names may hold `;`-free `/` and `=`.
 * Same reading as src/server/device-watch.ts (a layer above this one).
 */
export function clientOf(ua: string): Owner | undefined {
  if (!ua.startsWith(UA_PREFIX)) return undefined;
  const s = ua.slice(UA_PREFIX.length).trimStart();
  if (!s.startsWith("device=")) return undefined;
  const c = s.indexOf(";channel=", 7);
  const b = c < 0 ? -1 : s.indexOf(";build=", c + 9);
  return b < 0 ? undefined : { device: s.slice(7, c), channel: s.slice(c + 9, b) };
}

/** A single `bytes=a-b`, `bytes=a-` or `bytes=-n` against a file of `size` bytes (RFC 9110 §14.1.2). */
export function singleRange(header: string, size: number): { start: number; end: number } | undefined {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const n = Number(m[2]);
    return n > 0 ? { start: Math.max(0, size - n), end: size - 1 } : undefined;
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start <= end ? { start, end } : undefined;
}

/**
 * A response for a marker file of `size` bytes:
 * - started: a GET whose body starts at byte 0 (200, or 206 with a range from 0);
 * - completed: a body that reached the file's last byte whole (200 with every byte sent and
 *   not aborted, or 206 whose range ends at the last byte with all of it sent).
 * When the log does not record Range (nginx combined), a 206 counts (as both) only when it
 * carried every byte of the file; a resumed download then shows started but not completed.
 */
export function downloadOutcome(rec: AccessRecord, size: number): { started: boolean; completed: boolean } {
  const none = { started: false, completed: false };
  if (rec.method !== "GET" || size <= 0) return none;
  if (rec.status === 200) return { started: true, completed: !rec.aborted && rec.bytes === size };
  if (rec.status !== 206) return none;
  if (rec.range === undefined) {
    const whole = !rec.aborted && rec.bytes === size;
    return { started: whole, completed: whole };
  }
  const r = rec.range === null ? undefined : singleRange(rec.range, size);
  if (!r) return none;
  return { started: r.start === 0, completed: r.end === size - 1 && !rec.aborted && rec.bytes === r.end - r.start + 1 };
}

/** A GET of an index that the server answered with it (or "not modified"). */
export const isPoll = (rec: AccessRecord) => rec.method === "GET" && (rec.status === 200 || rec.status === 206 || rec.status === 304);
