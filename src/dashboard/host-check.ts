/**
 * Which Host headers the admin listener answers (issue 14.3). Without this check a web page
 * the operator opens could rebind its own name to 127.0.0.1 and read the dashboard and
 * /metrics or POST /verify: the browser thinks it talks to evil.example, so the same-origin
 * rules do not stop it, but it still sends `Host: evil.example:8090`. Answering only for
 * names the operator chose (and IP literals, which no rebinding can produce) closes that.
 */
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { ConfigError } from "../errors.js";

/** Host and optional port of a Host header (or an admin_allowed_hosts entry); null = malformed. */
export function parseHost(value: string): { host: string; port?: number } | null {
  const v = value.trim().toLowerCase();
  let host: string;
  let rest: string;
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    if (end < 0) return null;
    host = v.slice(1, end);
    rest = v.slice(end + 1);
    if (isIP(host) !== 6) return null;
  } else {
    const colon = v.indexOf(":");
    host = colon < 0 ? v : v.slice(0, colon);
    rest = colon < 0 ? "" : v.slice(colon);
    // RFC 3986 reg-name as browsers send it; the trailing dot of a rooted name is the same host.
    if (host.endsWith(".")) host = host.slice(0, -1);
    if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(host)) return null;
  }
  if (rest === "") return { host };
  if (!/^:\d{1,5}$/.test(rest) || Number(rest.slice(1)) > 65535) return null;
  return { host, port: Number(rest.slice(1)) };
}

/** Addresses that mean "every interface": the Host is then one of the machine's own. */
const WILDCARDS = new Set(["0.0.0.0", "::", ""]);

export interface HostPolicy {
  /** Names and literals allowed on top of the built-in ones (for messages and tests). */
  readonly extra: readonly string[];
  allows(hostHeader: string | undefined): boolean;
}

/**
 * localhost, 127.0.0.0/8, ::1, admin_address and admin_allowed_hosts; with a wildcard
 * admin_address also the machine's own interface addresses (IP literals cannot be rebound).
 */
export function hostPolicy(adminAddress: string, allowedHosts: readonly string[] = [], configPath = "the config"): HostPolicy {
  const names = new Set(["localhost", "::1"]);
  const extra: string[] = [];
  for (const entry of allowedHosts) {
    const parsed = parseHost(entry);
    if (!parsed)
      throw new ConfigError(
        `Cannot start the admin listener: admin_allowed_hosts entry '${entry}' in ${configPath} is not a host name or IP address`,
      );
    names.add(parsed.host);
    extra.push(parsed.host);
  }
  const wildcard = WILDCARDS.has(adminAddress.replace(/^\[|\]$/g, ""));
  if (!wildcard) names.add(adminAddress.replace(/^\[|\]$/g, "").toLowerCase());
  return {
    extra,
    allows(header) {
      if (header === undefined) return false;
      const parsed = parseHost(header);
      if (!parsed) return false;
      const { host } = parsed;
      if (names.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return true;
      return wildcard && isIP(host) !== 0 && ownAddresses().has(host);
    },
  };
}

function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.toLowerCase());
  return out;
}
