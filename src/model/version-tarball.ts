/**
 * What a version tarball says (server-reference §5.5, client-protocol §8.4): the channel.ini
 * text, the build file, the member list, and the `version-N.json` sidecar (§2.5). Pure: the
 * tree layer writes the tar, compresses and signs.
 */
import type { JsonValue } from "../format/pyjson.js";

export interface ChannelIniInput {
  fqdn: string;
  httpPort: string | number;
  httpsPort: string | number;
  channel: string;
  device: string;
  /** The build number as given ("1234"; the reference tests use "1.2.3.4"). */
  version: string | number;
  channelTarget?: string | null;
  versionDetail?: string | null;
}

/** Port 0 (number or text, §13 #6) means the client must not use that scheme. */
export function portValue(port: string | number): string {
  return String(port).trim() === "0" ? "disabled" : String(port);
}

/** channel.ini: `channel_target` (aliases) comes before `version_detail` (§5.5). */
export function channelIniText(i: ChannelIniInput): string {
  let text =
    "[service]\n" +
    `base: ${i.fqdn}\n` +
    `http_port: ${portValue(i.httpPort)}\n` +
    `https_port: ${portValue(i.httpsPort)}\n` +
    `channel: ${i.channel}\n` +
    `device: ${i.device}\n` +
    `build_number: ${String(i.version).trim()}\n`;
  if (i.channelTarget) text += `channel_target: ${i.channelTarget}\n`;
  if (i.versionDetail) text += `version_detail: ${i.versionDetail}\n`;
  return text;
}

export const DEFAULT_BUILD_PATH = "system/etc/ubuntu-build";
export const DEFAULT_CHANNEL_PATH = "system/etc/system-image/channel.ini";

export type VersionMember =
  | { type: "file"; name: string; mode: number; content: Buffer }
  | { type: "directory"; name: string; mode: number }
  | { type: "symlink"; name: string; mode: number; linkname: string };

const dirname = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
const join = (a: string, b: string) => (a === "" ? b : `${a}/${b}`);

/**
 * The five members in order (§5.5). Sizes are byte counts (the reference used characters,
 * §5.5 [QUIRK]). config.d is 0775 (LP #1454447); the links are relative so the recovery's
 * `system/` prefix does not matter.
 */
export function versionMembers(ini: ChannelIniInput, buildPath = DEFAULT_BUILD_PATH, channelPath = DEFAULT_CHANNEL_PATH): VersionMember[] {
  const configD = join(dirname(channelPath), "config.d");
  const channelBase = channelPath.slice(channelPath.lastIndexOf("/") + 1);
  return [
    { type: "file", name: buildPath, mode: 0o644, content: Buffer.from(`${String(ini.version)}\n`, "utf8") },
    { type: "file", name: channelPath, mode: 0o644, content: Buffer.from(channelIniText(ini), "utf8") },
    { type: "directory", name: configD, mode: 0o775 },
    { type: "symlink", name: `${configD}/00_default.ini`, mode: 0o644, linkname: "../client.ini" },
    { type: "symlink", name: `${configD}/01_channel.ini`, mode: 0o644, linkname: `../${channelBase}` },
  ];
}

/** `version-N.json` (§2.5): channel.ini.version is a string, the top-level version an int. */
export function versionSidecar(i: { version: number; channel: string; device: string; versionDetail?: string | null }): JsonValue {
  return {
    "channel.ini": {
      channel: i.channel,
      device: i.device,
      version: String(i.version),
      version_detail: i.versionDetail ?? "",
    },
    generator: "version",
    version: i.version,
    version_detail: `version=${i.version}`,
  };
}
