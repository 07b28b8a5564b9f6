/**
 * Who may use the admin listener, checked before any route runs (issue 14.3):
 *  1. the Host header must name this listener (host-check.ts): 421 otherwise, so a page
 *     using DNS rebinding gets nothing, not even the login form;
 *  2. with `admin_token_file`, every path but /healthz needs the token (auth.ts): a bearer
 *     header, or the session cookie a browser gets from the login form or `?token=`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServerLogger } from "../server/log.js";
import { clearCookie, viaHttps, type AdminToken } from "./auth.js";
import type { HostPolicy } from "./host-check.js";
import { html, raw } from "./html.js";
import { HTML, PAGE_CSP, TEXT, send } from "./reply.js";
import { DASHBOARD_CSS } from "./style.js";

/** Answers the request itself and resolves with the bytes sent, or null: the route may run. */
export type AccessGate = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<number | null>;

/** Distinct refused Host values logged (a rebinding page may try many; the log stays short). */
const MAX_LOGGED_HOSTS = 32;
/** A login form body is one short field. */
const MAX_FORM = 4096;

/**
 * A browser on the operator's machine can be made to POST to a loopback port by any web page;
 * a form of ours sends our own Origin (or none, from curl), anything else is refused. Behind
 * a reverse proxy the public host arrives as X-Forwarded-Host.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin || origin === "null") return origin === undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const forwarded = req.headers["x-forwarded-host"];
  const hosts = [req.headers.host, ...(typeof forwarded === "string" ? forwarded.split(",").map((h) => h.trim()) : [])];
  return hosts.includes(host);
}

/** The access log must not keep the token a browser brought in `?token=`. */
export function redactToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/g, "$1REDACTED");
}

export function createAccessGate(opts: { hosts: HostPolicy; token?: AdminToken; logger: ServerLogger }): AccessGate {
  const { hosts, token, logger } = opts;
  const logged = new Set<string>();
  return async (req, res, url) => {
    const host = req.headers.host;
    if (!hosts.allows(host)) {
      const shown = host === undefined ? "(none)" : JSON.stringify(host.slice(0, 200));
      if (logged.size < MAX_LOGGED_HOSTS && !logged.has(shown)) {
        logged.add(shown);
        logger.log({
          level: "warn",
          event: "admin-host-refused",
          host: shown,
          remote: req.socket.remoteAddress,
          msg: `Refused an admin request for host ${shown}: not admin_address, localhost, a loopback address or in admin_allowed_hosts`,
        });
      }
      return send(
        req,
        res,
        421,
        TEXT,
        `Misdirected Request: this admin listener does not answer for host ${shown}. ` +
          "Use localhost, a loopback address or admin_address, or add the name to admin_allowed_hosts (protection against DNS rebinding).\n",
      );
    }
    if (!token || url.pathname === "/healthz") return null;
    const get = req.method === "GET" || req.method === "HEAD";
    const loggedIn = (location: string) =>
      send(req, res, 303, TEXT, "Logged in\n", { Location: location, "Set-Cookie": token.sessionCookie(viaHttps(req)) });

    if (url.pathname === "/login") {
      if (get) return token.authorizes(req) ? send(req, res, 303, TEXT, "Logged in\n", { Location: "./" }) : loginPage(req, res, 200);
      if (req.method !== "POST") return send(req, res, 405, TEXT, "Method Not Allowed\n", { Allow: "GET, HEAD, POST" });
      if (!sameOrigin(req)) return send(req, res, 403, TEXT, "Cross-origin request refused\n");
      const form = await readForm(req);
      if (form === null)
        return send(req, res, 400, TEXT, "Bad Request: expected a form (application/x-www-form-urlencoded) of at most 4 KiB\n", {
          Connection: "close",
        });
      return token.matches(form.get("token") ?? "") ? loggedIn("./") : loginPage(req, res, 401, "Wrong token.");
    }
    if (url.pathname === "/logout") {
      if (req.method !== "POST") return send(req, res, 405, TEXT, "Method Not Allowed\n", { Allow: "POST" });
      if (!sameOrigin(req)) return send(req, res, 403, TEXT, "Cross-origin request refused\n");
      return send(req, res, 303, TEXT, "Logged out\n", { Location: "login", "Set-Cookie": clearCookie() });
    }
    if (get && url.searchParams.has("token")) {
      if (!token.matches(url.searchParams.get("token")!)) return loginPage(req, res, 401, "Wrong token.");
      // Back to the same page without the token (relative: right behind a proxy's prefix too).
      url.searchParams.delete("token");
      return loggedIn((url.pathname.split("/").pop() || "./") + url.search);
    }
    if (token.authorizes(req)) return null;
    const challenge = {
      "WWW-Authenticate": req.headers.authorization ? 'Bearer realm="si-admin", error="invalid_token"' : 'Bearer realm="si-admin"',
    };
    if (get && (url.pathname === "/" || url.pathname === "/index.html")) return loginPage(req, res, 401, undefined, challenge);
    return send(
      req,
      res,
      401,
      TEXT,
      "Unauthorized: this admin listener needs 'Authorization: Bearer <token>' (the token in admin_token_file), or log in on its dashboard page.\n",
      challenge,
    );
  };
}

function loginPage(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  problem?: string,
  headers: Record<string, string> = {},
): number {
  const page = html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · system-image</title><style>${raw(DASHBOARD_CSS)}</style></head>
<body><header><h1>system-image admin</h1></header><main><section id="login"><h2>Log in</h2>
${problem ? html`<p class="error">${problem}</p>` : ""}<form method="post" action="login">
<p><label>Token (from admin_token_file)<br><input type="password" name="token" autocomplete="current-password" required></label></p>
<p><button type="submit">Log in</button></p></form></section></main></body></html>`;
  return send(req, res, status, HTML, page.value, { "Content-Security-Policy": PAGE_CSP, ...headers });
}

/** The body of a urlencoded form, or null when it is something else or too large. */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  const type = String(req.headers["content-type"] ?? "")
    .split(";")[0]
    .trim()
    .toLowerCase();
  if (type !== "application/x-www-form-urlencoded") return null;
  if (Number(req.headers["content-length"] ?? 0) > MAX_FORM) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM) return null;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}
