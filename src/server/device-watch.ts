/**
 * Warnings about devices asking for something the tree does not have.
 *
 * A device whose channel or device name is missing from channels.json does not report an
 * error: the client just says "Already up-to-date" (client-protocol §3 step 5, §9, §11.9),
 * so a mis-configured fleet would stay silently stuck. The server is the only place where
 * that can be seen, so it logs a warning (1) when the client's User-Agent on /channels.json
 * names a channel or device channels.json lacks, and (2) on every 404 below a
 * `/<channel>/<device>/` path (flashing tools hard-code that layout: §10.1).
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { LogEntry, ServerLogger } from "./log.js";

export interface ClientIdentity {
  device: string;
  channel: string;
  build: string;
}

const UA_PREFIX = "Ubuntu System Image Upgrade Client:";

/**
 * `Ubuntu System Image Upgrade Client: device=<dev>;channel=<chan>;build=<n>` (client-protocol
 * §2) → its fields; undefined for any other User-Agent. Channel names may contain `/` and `=`,
 * so each field runs to the next `;<key>=` of a known key.
 */
export function parseClientUserAgent(ua: string | undefined): ClientIdentity | undefined {
  if (!ua?.startsWith(UA_PREFIX)) return undefined;
  // indexOf, not a regex: `(.*?)\s*$` backtracked quadratically on a User-Agent ending in
  // thousands of spaces and a letter (180 ms per request, issue 14.1). Same fields as
  // /^\s*device=(.*?);channel=(.*?);build=(.*?)\s*$/: each runs to the first `;<next key>=`.
  const s = ua.slice(UA_PREFIX.length).trimStart();
  if (!s.startsWith("device=")) return undefined;
  const c = s.indexOf(";channel=", 7);
  const b = c < 0 ? -1 : s.indexOf(";build=", c + 9);
  if (b < 0) return undefined;
  return { device: s.slice(7, c), channel: s.slice(c + 9, b), build: s.slice(b + 7).trimEnd() };
}

/** channel name → its device names. */
export type ChannelDevices = Map<string, Set<string>>;

/** channels.json text → channel/device names; undefined when it is not the expected shape. */
export function channelDevices(text: string): ChannelDevices | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return undefined;
  const out: ChannelDevices = new Map();
  for (const [name, ch] of Object.entries(doc as Record<string, unknown>)) {
    const devices = (ch as { devices?: unknown } | null)?.devices;
    const names = typeof devices === "object" && devices !== null ? Object.keys(devices) : [];
    out.set(name, new Set(names));
  }
  return out;
}

export type Problem = "unknown channel" | "unknown device" | "missing file";

/** Why a device's UA does not match channels.json, or undefined when it does. */
export function identityProblem(id: ClientIdentity, doc: ChannelDevices): Problem | undefined {
  const devices = doc.get(id.channel);
  if (!devices) return "unknown channel";
  return devices.has(id.device) ? undefined : "unknown device";
}

/**
 * A 404 path like `/16.04/devel/mako/index.json` → channel, device and why it failed; undefined
 * for paths that are not below a channel/device directory (`/pool/...`, `/gpg/...`, `/x`).
 * Channel names contain `/`, so the longest known channel prefix wins; without one the
 * conventional layout `<channel...>/<device>/<file>` is assumed.
 */
export function locateMissing(
  path: string,
  doc: ChannelDevices | undefined,
): { channel: string; device: string; problem: Problem } | undefined {
  const segments = path.split("/").slice(1);
  if (segments.length < 3 || segments[0] === "pool" || segments[0] === "gpg") return undefined;
  let best: string | undefined;
  for (const name of doc?.keys() ?? []) {
    if (path.startsWith(`/${name}/`) && (best === undefined || name.length > best.length)) best = name;
  }
  if (best !== undefined) {
    const rest = path.slice(best.length + 2).split("/");
    if (rest.length < 2) return undefined;
    const device = rest[0];
    return { channel: best, device, problem: doc!.get(best)!.has(device) ? "missing file" : "unknown device" };
  }
  return {
    channel: segments.slice(0, -2).join("/"),
    device: segments[segments.length - 2],
    problem: doc ? "unknown channel" : "missing file",
  };
}

/** The current channels.json, re-read only when its inode, size or mtime change. */
export class ChannelsCatalogue {
  private key = "";
  private doc: ChannelDevices | undefined;

  constructor(
    private readonly publishPath: string,
    private readonly logger: ServerLogger,
  ) {}

  /**
   * Never throws: a missing or malformed file yields undefined (and one warning per version).
   * Synchronous like the file handler (one stat on a local disk), which also keeps each
   * warning next to its access line in the log.
   */
  current(): ChannelDevices | undefined {
    const file = join(this.publishPath, "channels.json");
    try {
      const st = statSync(file);
      const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (key === this.key) return this.doc;
      const text = readFileSync(file, "utf8");
      this.key = key;
      this.doc = channelDevices(text);
      if (!this.doc)
        this.logger.log({ level: "warn", event: "bad-channels-json", msg: `Cannot parse ${file}: not a JSON object of channels` });
    } catch {
      this.key = "";
      this.doc = undefined;
    }
    return this.doc;
  }
}

/** Hooks the request pipeline calls after each response. */
export class DeviceWatch {
  private readonly catalogue: ChannelsCatalogue;

  constructor(
    publishPath: string,
    private readonly logger: ServerLogger,
  ) {
    this.catalogue = new ChannelsCatalogue(publishPath, logger);
  }

  /** Checks one finished request; never throws. */
  observe(info: { method?: string; path?: string; status: number; userAgent?: string; remote?: string }): void {
    const base: LogEntry = { level: "warn", path: info.path, user_agent: info.userAgent ?? null, remote: info.remote };
    if (info.path === "/channels.json" && info.method === "GET" && (info.status === 200 || info.status === 304)) {
      // HEAD is always followed by GET (client-protocol §2): checking GET alone warns once.
      const id = parseClientUserAgent(info.userAgent);
      if (!id) return;
      const doc = this.catalogue.current();
      const problem = doc && identityProblem(id, doc);
      if (!problem) return;
      this.logger.log({
        ...base,
        event: problem.replace(" ", "-"),
        channel: id.channel,
        device: id.device,
        build: id.build,
        msg: `Device asks for ${problem === "unknown channel" ? `channel '${id.channel}', which channels.json lacks` : `device '${id.device}', which channel '${id.channel}' lacks`}: the client will silently report "Already up-to-date"`,
      });
    } else if (info.status === 404 && info.path !== undefined) {
      const where = locateMissing(info.path, this.catalogue.current());
      if (!where) return;
      this.logger.log({
        ...base,
        event: where.problem.replace(" ", "-"),
        channel: where.channel,
        device: where.device,
        msg: `Not found for channel '${where.channel}', device '${where.device}' (${where.problem}): ${info.path}`,
      });
    }
  }
}
