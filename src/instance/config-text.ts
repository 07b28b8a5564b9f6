/**
 * The `etc/config` that `si init` writes: the shipped template (etc/config.example), so every
 * key keeps its documentation, with the instance's own values in [global]. The template's
 * example mirrors and channels name hosts that do not exist, so they are kept only as
 * commented-out examples: the new file names no mirror and no channel, and nothing after
 * [global] is live — lines appended to the file belong to [global] until their first
 * `[section]` header (README "Operator walkthrough", step 3).
 */

export interface InstanceValues {
  base_path: string;
  public_fqdn: string;
  public_http_port: number;
  public_https_port: number;
  admin_port: number;
}

export interface RenderOptions {
  /** true: si init made a self-signed certificate at tls_cert/tls_key; false: --no-tls. */
  selfSigned: boolean;
  /** For the header line (the caller's clock). */
  date: Date;
}

/** Keys of [global] commented out: they need sections the new file does not have. */
const DISABLED_GLOBAL_KEYS = ["mirrors", "channels"];

const SECTION_RE = /^\[([^\]]+)\]/;
/** `key = v`, `key: v`, and the template's commented-out `# key = v` form (never prose). */
const KEY_RE = /^(?:([A-Za-z0-9_.\-/,]+)\s*[=:]|#\s*([a-z0-9_]+) = )/;

function certificateNote(o: RenderOptions, fqdn: string): string[] {
  return [
    o.selfSigned
      ? `# si init made a self-signed certificate for ${fqdn} here (devices accept only a public CA's).`
      : "# si init made no certificate (--no-tls): install one here before `si serve` uses HTTPS.",
    "# A real certificate (e.g. certbot with a DNS challenge: the tree server does not serve",
    "# /.well-known/): a --deploy-hook copies $RENEWED_LINEAGE/fullchain.pem to tls_cert and",
    "# privkey.pem to tls_key (mode 0600, owned by the server's user), then runs",
    "# `systemctl reload system-image-server`: SIGHUP makes `si serve` re-read both files",
    "# without dropping a connection.",
  ];
}

/** Renders the template with `values`; pure (no IO), so it is tested on its own. */
export function renderInstanceConfig(template: string, values: InstanceValues, o: RenderOptions): string {
  const set = new Map<string, string>(Object.entries(values).map(([k, v]) => [k, String(v)]));
  const done = new Set<string>();
  const out: string[] = [
    `# Written by \`si init\` on ${o.date.toISOString().slice(0, 10)} from etc/config.example.`,
    "# `si config check` validates it; `si config show` prints what the server reads.",
    "#",
  ];
  let section: string | undefined;
  let afterGlobal = false;
  const endGlobal = () => {
    // Keys the template does not name (a future template may drop one) go at the end of [global].
    for (const [k, v] of set) if (!done.has(k)) out.push(`${k} = ${v}`);
  };
  for (const line of template.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n")) {
    const header = SECTION_RE.exec(line);
    if (header) {
      if (section === "global" && !afterGlobal) {
        endGlobal();
        out.push(
          "",
          "# ---- si init: the template's example sections, commented out --------------------",
          "# They name hosts and channels that do not exist. Copy what you need to the end.",
          "",
        );
        afterGlobal = true;
      }
      section = header[1];
      out.push(afterGlobal ? `# ${line}` : line);
      continue;
    }
    if (afterGlobal) {
      out.push(line === "" || line.startsWith("#") || line.startsWith(";") ? line : `# ${line}`);
      continue;
    }
    const key = section === "global" ? KEY_RE.exec(line) : null;
    const name = key?.[1] ?? key?.[2];
    const live = key?.[1] !== undefined;
    if (name !== undefined && set.has(name) && !done.has(name)) {
      out.push(`${name} = ${set.get(name)}`);
      done.add(name);
    } else if (name !== undefined && live && DISABLED_GLOBAL_KEYS.includes(name)) {
      out.push(`# (si init: the example's ${name}, commented out; yours go at the end of this file)`, `# ${line}`);
    } else if (name === "tls_cert" && live) {
      out.push(...certificateNote(o, values.public_fqdn), line);
    } else {
      out.push(line);
    }
  }
  if (!afterGlobal) endGlobal();
  out.push(
    "",
    "# ---- Your channels -----------------------------------------------------------------",
    "# Everything after [global] above is commented out, so lines added here still belong to",
    "# [global]: first `channels = <name>, ...` (import-images builds them in this order),",
    "# then one [channel_<name>] section each, like the examples above.",
    "",
  );
  return out.join("\n");
}
