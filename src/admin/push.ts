/**
 * copy-image `-q` (server-reference §9.2 step 14): tell the UBports push service that a new
 * image exists, so devices on that channel check now. Best effort: a failure is logged and
 * never fails the copy (the image is already published).
 */
import { pyString } from "../format/pyjson.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../io/log.js";

export const DEFAULT_PUSH_URL = "https://push.ubports.com/broadcast";
const TIMEOUT_MS = 15_000;

/**
 * The body, byte for byte as Python's `json.dumps` (default `", "` and `": "` separators,
 * insertion order, ASCII escapes) wrote it:
 * `{"channel": "system", "expire_on": "<UTC now + 1 day>Z", "data": {"<ch>/<dev>": [N, ""]}}`.
 */
export function pushBody(channel: string, device: string, version: number, now: Date): string {
  const expire = new Date(now.getTime() + 86_400_000).toISOString().slice(0, 19) + "Z";
  return `{"channel": "system", "expire_on": ${pyString(expire)}, "data": {${pyString(`${channel}/${device}`)}: [${version}, ""]}}`;
}

/** POSTs the notification; returns whether the service answered 200. */
export async function pushNotify(url: string, body: string, log: Logger): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await res.arrayBuffer().catch(() => undefined);
    if (res.status !== 200) {
      log.error(`push notification to ${url} failed: HTTP ${res.status} ${res.statusText}`.trimEnd());
      return false;
    }
    log.info(`push notification sent to ${url}`);
    return true;
  } catch (err) {
    log.error(`push notification to ${url} failed: ${errorMessage(err)}`);
    return false;
  }
}
