/**
 * The typed view of an instance's `etc/config` (server-reference §4). Field names are the
 * file's own keys (snake_case), so `conf.publish_path` reads the same in the admin shell as
 * in the reference's si-shell.
 */

/** What every kind of mirror has (issue 16). */
interface MirrorCommon {
  name: string;
  /** Public base URL devices use on this mirror (`url`): verify-tree --server and purge. */
  url?: string;
  /** `purge_command`, split on whitespace; run after the last phase with the changed document URLs appended. */
  purge_command?: string[];
}

/**
 * `type = trigger` (the default, server-reference §4.4): ask the mirror over ssh to pull on
 * its own. Every reference config is one of these.
 */
export interface TriggerMirrorConfig extends MirrorCommon {
  type: "trigger";
  ssh_host: string;
  ssh_user: string;
  /** Absolute (made absolute against base_path when relative). */
  ssh_key: string;
  ssh_port: number;
  ssh_command: string;
}

/** `type = rsync`: push the tree with rsync over ssh to `target` (`user@host:/path`). */
export interface RsyncMirrorConfig extends MirrorCommon {
  type: "rsync";
  target: string;
  /** Absolute; from the mirror's section or [mirror_default]; absent: ssh's own default. */
  ssh_key?: string;
  ssh_port?: number;
  /** A known_hosts file for the target (absolute); absent: ssh's own. */
  ssh_known_hosts?: string;
}

/** `type = rclone`: push with rclone to `remote` (`name:bucket/path`, or a local directory). */
export interface RcloneMirrorConfig extends MirrorCommon {
  type: "rclone";
  remote: string;
  /** rclone's own config file (absolute); absent: rclone's default. */
  rclone_config?: string;
}

export type MirrorConfig = TriggerMirrorConfig | RsyncMirrorConfig | RcloneMirrorConfig;
export type MirrorType = MirrorConfig["type"];

/** A channel's staged rollout (issue 17): `rollout = 5%@0h, 25%@24h, 100%@72h`. */
export interface RolloutStep {
  /** phased-percentage of this step, 1..100. */
  percentage: number;
  /** Hours after the rollout started when this step begins. */
  afterHours: number;
}

/** One `file_<name> = generator;arg0;arg1` entry, in the order of the channel's `files`. */
export interface FileEntry {
  /** Entry name as listed in `files`, possibly `<file>,<device>` (device override). */
  name: string;
  generator: string;
  arguments: string[];
}

export interface ChannelConfig {
  name: string;
  type: "auto" | "manual";
  versionbase: number;
  fullcount: number;
  deltabase: string[];
  files: FileEntry[];
  /** Delta policy for members whose only change is their mtime (issue 19): `content` (default)
   *  leaves them out of the delta, as the reference does; `exact` ships them. Per channel,
   *  falling back to `[global] delta_mtime`. */
  delta_mtime: DeltaMtimePolicy;
  /** `rollout`: new images of this channel start a staged rollout with these steps (issue 17). */
  rollout?: RolloutStep[];
  /** `rollout_floor` (percent, default 50): the completed/started download ratio under which a rollout pauses itself. */
  rollout_floor: number;
  /** `rollout_grace` (hours, default 2): how long after a step begins before the floor applies. */
  rollout_grace_hours: number;
  /** `rollout_min_downloads` (default 20): started downloads needed before the floor applies. */
  rollout_min_downloads: number;
}

export type DeltaMtimePolicy = "content" | "exact";

/** Limits every image passes before it is signed (issue 13). */
export interface ImageLimits {
  /** Total expanded (tar) bytes; default 16 GiB. */
  max_bytes: number;
  /** Members; default 2,000,000. */
  max_members: number;
  /** Expanded / compressed bytes, checked once 64 MiB have been expanded; default 50. */
  max_ratio: number;
  /** Device nodes outside `system/dev/` (refused unless true). */
  allow_devices: boolean;
}

export interface Config {
  /** Absolute path of the config file this was read from. */
  path: string;
  base_path: string;
  gpg_key_path: string;
  gpg_keyring_path: string;
  publish_path: string;
  state_path: string;
  public_fqdn?: string;
  public_http_port?: string;
  public_https_port?: string;
  /** HTTPS certificate and key for `si serve` (absolute). */
  tls_cert?: string;
  tls_key?: string;
  /** Cron expression (UTC) for the built-in scheduler; absent = off. */
  import_schedule?: string;
  admin_port: number;
  admin_address: string;
  /** Host names the admin listener answers besides admin_address, localhost and loopback
   *  literals (DNS rebinding, issue 14.3); absent = none. */
  admin_allowed_hosts?: string[];
  /** File holding the admin listener's bearer token (absolute); absent = no authentication. */
  admin_token_file?: string;
  /** `si serve` warns when a published keyring expires within this many days; absent = 30. */
  keyring_warn_days?: number;
  /** `si serve`: most connections each public listener of a worker holds at once; more are
   *  refused with a log line (issue 14.2); absent = 4096. */
  serve_max_connections?: number;
  /** `si serve`: seconds a response may wait for its client to take any data before the
   *  connection is cut (issue 14.2); absent = 60. */
  serve_send_timeout?: number;
  /** keyring.json expiry periods (reference defaults: 730 and 31 days). */
  image_signing_expiry_days: number;
  device_signing_expiry_days: number;
  /** Rebuild and publish the image-signing keyring when it expires within this many days
   *  (the scheduler calls renewExpiringKeyrings, src/keys/renew.ts); absent = off. */
  keyring_auto_renew_days?: number;
  /** xz settings for everything the server compresses. */
  xz_level: number;
  /** Seconds a generator's HTTP request may stay silent (connect, headers, between body
   *  chunks); absent = the reference's timeouts (5 s, 20 s for http-cdimage). */
  http_timeout?: number;
  /** Extra attempts after a network error, timeout or 5xx (404 and HTML pages are final). */
  http_retries: number;
  /** Seconds to connect to a build server and get the first byte of its answer (response
   *  headers), per attempt; absent = 10 (or http_timeout when that is shorter). http_timeout
   *  is then only the no-progress limit between body chunks (issue 15 item 7). */
  http_connect_timeout?: number;
  /** ssh `ConnectTimeout` of mirror triggers, seconds; absent = 10. */
  mirror_connect_timeout?: number;
  /** Seconds one mirror trigger may run before ssh is stopped; absent = 300. */
  mirror_timeout?: number;
  /** channels.json names an immutable, content-named copy of each index
   *  (`/<channel>/<device>/index-<sha256/16>.json`), so a device never gets an index and a
   *  signature from two different commits (src/tree/versioned-index.ts); default on. */
  versioned_index: boolean;
  /** ImageLimits (issue 13): `[global] image_max_bytes` etc.; see imageLimits(). */
  image_max_bytes: number;
  image_max_members: number;
  image_max_ratio: number;
  image_allow_devices: boolean;
  /** `[global] delta_mtime` (channels may override): see ChannelConfig.delta_mtime. */
  delta_mtime: DeltaMtimePolicy;
  /** `[global] delta_xz_block_mib`: xz block size for deltas, MiB. */
  delta_xz_block_mib: number;
  /** `[global] delta_xz_dict_mib`: largest xz dictionary of a delta's blocks, MiB. */
  delta_xz_dict_mib: number;
  /** `mirror_verify`: run verify-tree --server against each mirror's `url` after a push (issue 16). */
  mirror_verify: boolean;
  mirrors: Record<string, MirrorConfig>;
  /** Channels in config order (Map keeps insertion order). */
  channels: Map<string, ChannelConfig>;
}

/** The image limits of a config (defaults when a test builds a partial Config). */
export function imageLimits(conf: Partial<Config>): ImageLimits {
  return {
    max_bytes: conf.image_max_bytes ?? 16 * 1024 ** 3,
    max_members: conf.image_max_members ?? 2_000_000,
    max_ratio: conf.image_max_ratio ?? 50,
    allow_devices: conf.image_allow_devices ?? false,
  };
}
