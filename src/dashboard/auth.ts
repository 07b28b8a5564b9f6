/**
 * Optional bearer-token authentication of the admin listener (`admin_token_file`, issue 14.3).
 * Tools send `Authorization: Bearer <token>` (Prometheus: the scrape_config `authorization`
 * block). A browser hands the token over once, through the login form or `?token=`, and gets
 * an HttpOnly, SameSite=Strict cookie holding an HMAC of the token, not the token itself:
 * a page elsewhere can neither read it nor make the browser send it. Every comparison is in
 * constant time. Changing the token file (and restarting) logs every browser out.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { ConfigError } from "../errors.js";

export const COOKIE = "si_admin";
/** Cookie lifetime: a month; the token itself never expires on its own. */
const COOKIE_MAX_AGE = 30 * 86400;
const MIN_TOKEN = 16;

export interface AdminToken {
  /** The file it came from (for messages). */
  file: string;
  /** Group or world can read the file (the caller warns). */
  exposed: boolean;
  matches(presented: string): boolean;
  /** Whether a request carries the token (Authorization header) or the session cookie. */
  authorizes(req: IncomingMessage): boolean;
  /** Set-Cookie value that logs a browser in (`secure` behind an HTTPS proxy). */
  sessionCookie(secure: boolean): string;
}

/** Same-length digests, so timingSafeEqual never sees different lengths (which it rejects). */
const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
const equal = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** Reads the token: the file's first line, visible ASCII (a header must carry it), 16+ characters. */
export function readAdminToken(file: string): AdminToken {
  let text: string;
  let mode: number;
  try {
    text = readFileSync(file, "utf8");
    mode = statSync(file).mode;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError(`Cannot read admin_token_file ${file}: ${code}`, "Exception", { cause: err });
  }
  const token = (text.split(/\r?\n/)[0] ?? "").trim();
  if (!/^[\x21-\x7e]*$/.test(token))
    throw new ConfigError(`Cannot use admin_token_file ${file}: the token must be printable ASCII without spaces`);
  if (token.length < MIN_TOKEN) {
    throw new ConfigError(
      `Cannot use admin_token_file ${file}: the token has ${token.length} characters, at least ${MIN_TOKEN} are needed (e.g. openssl rand -hex 32)`,
    );
  }
  return tokenFrom(token, file, (mode & 0o077) !== 0);
}

export function tokenFrom(token: string, file = "(inline)", exposed = false): AdminToken {
  const session = createHmac("sha256", token).update("si admin session v1").digest("base64url");
  return {
    file,
    exposed,
    matches: (presented) => equal(presented, token),
    authorizes(req) {
      const auth = req.headers.authorization;
      const bearer = auth !== undefined ? /^bearer +(\S+)\s*$/i.exec(auth) : null;
      if (bearer && equal(bearer[1], token)) return true;
      const cookie = readCookie(req, COOKIE);
      return cookie !== undefined && equal(cookie, session);
    },
    sessionCookie: (secure) =>
      `${COOKIE}=${session}; Path=/; Max-Age=${COOKIE_MAX_AGE}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`,
  };
}

/** Set-Cookie value that logs a browser out. */
export function clearCookie(): string {
  return `${COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict`;
}

/** Whether the browser reached us over HTTPS (through a proxy that says so). */
export function viaHttps(req: IncomingMessage): boolean {
  return (
    String(req.headers["x-forwarded-proto"] ?? "")
      .split(",")[0]
      .trim()
      .toLowerCase() === "https"
  );
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
