/** How every admin answer is written: complete body, never cached, never sniffed. */
import type { IncomingMessage, ServerResponse } from "node:http";

export const TEXT = "text/plain; charset=utf-8";
export const HTML = "text/html; charset=utf-8";
/** Our pages load nothing and post only to themselves; no page may frame them (clickjacking). */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

/** Sends a whole answer and returns the body bytes written (0 for HEAD). */
export function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string | string[]> = {},
): number {
  const data = Buffer.from(body);
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": String(data.length),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(req.method === "HEAD" ? undefined : data);
  return req.method === "HEAD" ? 0 : data.length;
}
