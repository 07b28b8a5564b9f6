/**
 * The nginx site serving the published tree, generated from the caching and type tables
 * `si serve` uses (src/server/content-rules.ts), so the two can never disagree (issue 14
 * item 6). `si nginx-site` prints it for an instance; etc/nginx/system-image.conf is its
 * output for etc/config.example (test/deploy/nginx-rules.test.ts compares them).
 * Pure: options in, text out.
 */
import type { Config } from "../config/types.js";
import { publicPorts } from "../server/start.js";
import { CACHE_RULES, CONTENT_TYPES, DEFAULT_CACHE, DEFAULT_CONTENT_TYPE } from "../server/content-rules.js";
import { ConfigError, SiError } from "../errors.js";

export interface NginxSiteOptions {
  serverName: string;
  /** The published tree (publish_path). */
  root: string;
  /** null = no listener of that kind. */
  httpPort: number | null;
  httpsPort: number | null;
  tlsCert: string;
  tlsKey: string;
  /** Where the `si_json` access log goes (read by `si fleet report --access-log`). Default DEFAULT_ACCESS_LOG. */
  accessLog?: string;
}

/** Debian's nginx log directory, writable by the master process that opens it. */
export const DEFAULT_ACCESS_LOG = "/var/log/nginx/system-image.access.json";

/**
 * The `si_json` access-log format: one JSON object per line with the field names of si serve's
 * own access lines (src/server/log.ts), so `si fleet report --access-log` reads both the same
 * way (src/fleet/parse.ts). `path` is the request target as sent, as si serve logs it; `range`
 * is the Range header ("" when none); `aborted` is true when nginx did not send the whole
 * response (`$request_completion` is not "OK"). Both directives belong to nginx's `http`
 * context, where a site file in sites-enabled/ is included.
 */
export const SI_JSON_LOG_FORMAT = [
  "map $request_completion $si_aborted {",
  "    OK      false;",
  "    default true;",
  "}",
  "log_format si_json escape=json",
  `    '{"time":"$time_iso8601","method":"$request_method","path":"$request_uri",'`,
  `    '"status":$status,"bytes":$body_bytes_sent,"range":"$http_range","aborted":$si_aborted,'`,
  `    '"remote":"$remote_addr","user_agent":"$http_user_agent"}';`,
];

/** The instance's public name, ports, tree and certificate, as `si serve` would use them. */
export function nginxSiteOptions(config: Config): NginxSiteOptions {
  const { http, https } = publicPorts(config, {});
  if (http === null && https === null) {
    throw new ConfigError(`Cannot write the nginx site: public_http_port and public_https_port are both 0 or unset in ${config.path}`);
  }
  if (https !== null && (!config.tls_cert || !config.tls_key)) {
    throw new ConfigError(`Cannot write the nginx site: tls_cert and tls_key are needed for public_https_port in ${config.path}`);
  }
  return {
    serverName: config.public_fqdn || "_",
    root: config.publish_path,
    httpPort: http,
    httpsPort: https,
    tlsCert: config.tls_cert ?? "",
    tlsKey: config.tls_key ?? "",
    accessLog: DEFAULT_ACCESS_LOG,
  };
}

/**
 * A regex as an nginx quoted string. Inside quotes nginx turns `\\`, `\"`, `\t`... into
 * other characters, so a pattern with those (or a flag nginx's `~` cannot express) is refused.
 */
function quoted(pattern: RegExp): string {
  if (/["\s]|\\[\\"'tnr]/.test(pattern.source) || pattern.flags !== "") {
    throw new SiError(`Cannot write ${pattern} into an nginx site: flags, a quote, a blank or an escape nginx would rewrite`);
  }
  // `\/` is JavaScript's spelling of `/` in a regex source; PCRE needs no escape there.
  return `"${pattern.source.replaceAll("\\/", "/")}"`;
}

/** A path as one nginx argument: quoted when it holds a blank, `;`, `{`, `}`, `#` or a quote. */
function arg(path: string): string {
  return /[\s;{}#"'\\]/.test(path) ? `"${path.replace(/["\\]/g, "\\$&")}"` : path;
}

function location(head: string, why: string, cacheControl: string): string[] {
  return [
    `    # ${why}`,
    `    location ${head} {`,
    `        add_header Cache-Control "${cacheControl}";`,
    "        try_files $uri =404;",
    "    }",
    "",
  ];
}

/**
 * Exact locations for channels.json and its signature: on a mirror pushed by rsync they are
 * served through `.si/channels/current` (a symlink one rename replaces, src/mirror/pair-dir.ts),
 * so a device never gets an old document with a new signature twice in a row; elsewhere (the
 * primary, other mirrors) `.si/` does not exist and the plain files are served.
 */
export function pairLocations(): string[] {
  const rule = CACHE_RULES.find((r) => r.pattern.test("/channels.json") && r.pattern.test("/channels.json.asc"));
  if (!rule) throw new Error("Cannot write the nginx site: no cache rule for /channels.json");
  return ["channels.json", "channels.json.asc"].flatMap((name) => [
    ...(name === "channels.json"
      ? ["    # channels.json and its .asc from the pair directory a mirror push switches in one rename, if any."]
      : []),
    `    location = /${name} {`,
    `        add_header Cache-Control "${rule.cacheControl}";`,
    `        try_files /.si/channels/current/${name} $uri =404;`,
    "    }",
    "",
  ]);
}

export function nginxSite(o: NginxSiteOptions): string {
  const listen: string[] = [];
  if (o.httpPort !== null) listen.push(`    listen ${o.httpPort};`, `    listen [::]:${o.httpPort};`);
  if (o.httpsPort !== null) {
    listen.push(
      "    # Add `http2` to these (or `http2 on;` on nginx >= 1.25.1) if your nginx supports it.",
      `    listen ${o.httpsPort} ssl;`,
      `    listen [::]:${o.httpsPort} ssl;`,
    );
  }
  const tls = o.httpsPort === null ? [] : [`    ssl_certificate     ${arg(o.tlsCert)};`, `    ssl_certificate_key ${arg(o.tlsKey)};`, ""];
  const width = Math.max(...Object.values(CONTENT_TYPES).map((t) => t.length)) + 1;
  const types = Object.entries(CONTENT_TYPES).map(([ext, type]) => `        ${type.padEnd(width)}${ext};`);
  return [
    "# nginx serving the same published tree as `si serve` (for scaling out, or in front of a",
    "# CDN). GENERATED by `si nginx-site` from src/server/content-rules.ts, the table `si serve`",
    "# takes its Cache-Control and Content-Type from: regenerate instead of editing, e.g.",
    "#   si nginx-site > /etc/nginx/sites-available/system-image",
    "# What devices and flashing tools need (client-protocol §2, §10, §11):",
    "#   - HEAD on every file, exact Content-Length, Range: nginx's static module does these;",
    "#   - no compression of responses (the client sends no Accept-Encoding, hashes the bytes);",
    "#   - `//pool/x` answered as `/pool/x` (the UBports installer concatenates base + path):",
    "#     merge_slashes (on by default) does it;",
    "#   - the tree at the host root, the same tree on HTTP and HTTPS.",
    "# Access lines in si serve's own JSON shape, for `si fleet report --access-log FILE`",
    '# (downloads per image, polling clients; README, "Fleet adoption").',
    ...SI_JSON_LOG_FORMAT,
    "",
    "server {",
    ...listen,
    `    server_name ${o.serverName};`,
    "",
    ...tls,
    `    access_log ${arg(o.accessLog ?? DEFAULT_ACCESS_LOG)} si_json;`,
    `    root ${arg(o.root)};`,
    "    merge_slashes on;",
    "    gzip off;",
    "    autoindex off;",
    "    sendfile on;",
    "    tcp_nopush on;",
    "    # Symlinks never lead out of the tree.",
    "    disable_symlinks if_not_owner from=$document_root;",
    "",
    "    types {",
    ...types,
    "    }",
    `    default_type ${DEFAULT_CONTENT_TYPE};`,
    "",
    "    # Temporary and hidden files of an import in progress are never served.",
    "    location ~ /\\. {",
    "        return 404;",
    "    }",
    "",
    ...pairLocations(),
    "    # Regex locations are tried in this order and the first match wins, as in `si serve`.",
    ...CACHE_RULES.flatMap((r) => location(`~ ${quoted(r.pattern)}`, `${r.kind}: ${r.why}`, r.cacheControl)),
    ...location("/", `${DEFAULT_CACHE.kind}: ${DEFAULT_CACHE.why}`, DEFAULT_CACHE.cacheControl).slice(0, -1),
    "}",
    "",
  ].join("\n");
}
