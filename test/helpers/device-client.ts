/**
 * A faithful model of the system-image 3.3 client (client-protocol §1-§8) and of the recovery
 * that applies its work, for end-to-end tests against a real server. A fresh device each run
 * (no cached keyrings), the state machine of state.py:
 *   image-master (signed by the preinstalled archive-master) → blacklist (optional: any download
 *   error means none) → image-signing (image-master minus blacklist) → channels.json → [device
 *   keyring] → index.json → winning path (WeightedScorer, phased percentage, bootme) → files
 *   (sha256 while downloading, then signatures) → ubuntu_command → recovery apply.
 * Keyrings and documents come from https_base, files from http_base (§1.1); every group is a
 * HEAD pass then a GET pass (§2). Signatures are judged by REAL gpg plus the client's
 * primary-key rule (device-gpg.ts). Errors are ClientError, named like the Python exception.
 *
 * Usage: `await runDeviceClient({ host: "127.0.0.1", httpPort, httpsPort, ca, channel, device,
 * buildNumber, archiveMaster })`; see DeviceRun for what comes back. Needs gpg, tar and xz.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Image, IndexDoc } from "../../src/model/index-doc.js";
import { choosePath, getCandidates, iterPath, pathLabel, ubuntuCommand } from "../../src/verify/client-path.js";
import { clientVerify, unpackKeyring } from "./device-gpg.js";
import { ClientError, Downloader, type Trace } from "./device-http.js";
import { runRecovery } from "./device-recovery.js";

export { ClientError } from "./device-http.js";

export interface DeviceClientOptions {
  /** `[service] base`: a bare host. */
  host: string;
  /** `[service] http_port` / `https_port`: a port or "disabled". */
  httpPort: number | "disabled";
  httpsPort: number | "disabled";
  /** CA that signed the server's certificate (the client's test hook make_testable). */
  ca?: Buffer;
  channel: string;
  device: string;
  buildNumber: number;
  channelTarget?: string;
  /** /etc/machine-id (default: a fixed id). */
  machineId?: string;
  /** `-p N`: overrides the computed phase. */
  phaseOverride?: number;
  /** The preinstalled archive-master.tar.xz (its .asc beside it, for the recovery). */
  archiveMaster: string;
  /** The device's current rootfs (a directory with the contents of /cache/system), if any. */
  system?: string;
  /** false = `--no-apply`: stop after writing ubuntu_command. */
  apply?: boolean;
  /** Where the device's directories are made (default: the system temp dir). */
  workDir?: string;
  now?: Date;
}

export interface DeviceRun {
  outcome: "up-to-date" | "applied" | "downloaded";
  /** Every request, in order: [HEAD|GET, URL, status]. */
  trace: Trace[];
  /** The winning upgrade path, e.g. "1:2" ("" when up to date). */
  path: string;
  phase?: number;
  ubuntuCommand?: string;
  /** The device's directories: work root, /cache, /cache/recovery, /cache/system. */
  work: string;
  cacheDir: string;
  recoveryDir: string;
  systemDir: string;
  /** After apply: system/etc/ubuntu-build and system/etc/system-image/channel.ini. */
  buildNumber?: number;
  channelIni?: string;
  recoveryLog?: string[];
}

const GENERATED_AT = /^\w{3} \w{3} +\d{1,2} \d{2}:\d{2}:\d{2} (\w+) \d{4}$/;

/** config._calculate_http_bases */
function bases(o: DeviceClientOptions): { http: string; https: string } {
  if (o.httpPort === "disabled" && o.httpsPort === "disabled")
    throw new ClientError("AssertionError", "Cannot disable both http and https ports");
  let http = o.httpPort === "disabled" ? undefined : o.httpPort === 80 ? `http://${o.host}` : `http://${o.host}:${o.httpPort}`;
  let https = o.httpsPort === "disabled" ? undefined : o.httpsPort === 443 ? `https://${o.host}` : `https://${o.host}:${o.httpsPort}`;
  http ??= https;
  https ??= http;
  return { http: http!, https: https! };
}

/** urllib.parse.urljoin for the paths these documents hold. */
const urljoin = (base: string, url: string) => new URL(url, `${base}/`).href;
const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** json.loads of a file read with encoding='utf-8' (a BOM or bad JSON is a ValueError). */
function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch (err) {
    throw new ClientError("ValueError", `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function runDeviceClient(o: DeviceClientOptions): Promise<DeviceRun> {
  const work = mkdtempSync(join(o.workDir ?? tmpdir(), "si-device-"));
  const cacheDir = join(work, "cache");
  const recoveryDir = join(cacheDir, "recovery"); // [updater] cache_partition
  const systemDir = join(cacheDir, "system");
  const dataDir = join(work, "data"); // [updater] data_partition
  const keyringDir = join(work, "keyrings"); // [gpg] image_master, image_signing, device_signing
  const scratch = join(work, "tmp");
  for (const d of [recoveryDir, dataDir, keyringDir, scratch]) mkdirSync(d, { recursive: true });
  // cp -a keeps owners, modes and symlink times (fs.cpSync does not set a symlink's mtime).
  if (o.system) execFileSync("cp", ["-a", o.system, systemDir]);
  else mkdirSync(systemDir);
  const base = bases(o);
  const http = new Downloader(`Ubuntu System Image Upgrade Client: device=${o.device};channel=${o.channel};build=${o.buildNumber}`, o.ca);
  try {
    return await upgrade();
  } catch (err) {
    // The requests up to the failure, for tests that check what the device asked for.
    if (err instanceof ClientError) err.trace = http.trace;
    throw err;
  }

  async function upgrade(): Promise<DeviceRun> {
    const run: DeviceRun = { outcome: "up-to-date", trace: http.trace, path: "", work, cacheDir, recoveryDir, systemDir };
    const now = o.now ?? new Date();
    const gpgOf = (tarball: string) => unpackKeyring(tarball, scratch).gpg ?? Buffer.alloc(0);
    const keyrings: Record<string, string> = { "archive-master": o.archiveMaster };
    let blacklist: Buffer | undefined;

    /** keyring.get_keyring: download, verify with `signer`, check type, model and expiry. */
    const getKeyring = async (type: string, src: string, ascUrl: string, signer: string, withBlacklist: boolean) => {
      const dest = join(type === "blacklist" ? dataDir : recoveryDir, "keyring.tar.xz");
      await http.getFiles([
        { url: urljoin(base.https, src), dest },
        { url: urljoin(base.https, ascUrl), dest: `${dest}.asc` },
      ]);
      const v = clientVerify(`${dest}.asc`, dest, [gpgOf(keyrings[signer])], withBlacklist ? blacklist : undefined);
      if (!v.ok) throw new ClientError("SignatureError", `${src} (${signer}): ${v.why}`);
      const json = unpackKeyring(dest, scratch).json;
      if (!json) throw new ClientError("KeyError", `${src}: no readable keyring.json`);
      if (json.type !== type) throw new ClientError("KeyringError", `keyring type mismatch; wanted: ${type}, got: ${String(json.type)}`);
      if (json.model !== undefined && json.model !== null && json.model !== o.device) {
        throw new ClientError(
          "KeyringError",
          `keyring model mismatch; wanted: ${o.device}, got: ${typeof json.model === "string" ? json.model : JSON.stringify(json.model)}`,
        );
      }
      if (json.expiry !== undefined && json.expiry !== null && (json.expiry as number) < now.getTime() / 1000) {
        throw new ClientError("KeyringError", "expired keyring timestamp");
      }
      const final = type === "blacklist" ? join(dataDir, "blacklist.tar.xz") : join(keyringDir, `${type}.tar.xz`);
      copyFileSync(dest, final);
      copyFileSync(`${dest}.asc`, `${final}.asc`);
      keyrings[type] = final;
    };

    // _get_blacklist_1: image-master (fresh device: nothing cached), then the optional blacklist.
    await getKeyring("image-master", "gpg/image-master.tar.xz", "gpg/image-master.tar.xz.asc", "archive-master", false);
    const fetchBlacklist = async (): Promise<void> => {
      try {
        await getKeyring("blacklist", "gpg/blacklist.tar.xz", "gpg/blacklist.tar.xz.asc", "image-master", false);
        blacklist = gpgOf(keyrings.blacklist);
      } catch (err) {
        if (!(err instanceof ClientError && err.kind === "FileNotFoundError")) throw err;
      }
    };
    try {
      await fetchBlacklist();
    } catch (err) {
      if (!(err instanceof ClientError && err.kind === "SignatureError")) throw err;
      // _get_master_key, then _get_blacklist_2: a second bad signature is fatal.
      await getKeyring("image-master", "gpg/image-master.tar.xz", "gpg/image-master.tar.xz.asc", "archive-master", true);
      await fetchBlacklist();
    }

    // _get_channel: image-signing, then channels.json; one retry with a fresh image-signing.
    await getKeyring("image-signing", "gpg/image-signing.tar.xz", "gpg/image-signing.tar.xz.asc", "image-master", true);
    const channelsFile = join(scratch, "channels.json");
    for (let count = 0; ; count++) {
      await http.getFiles([
        { url: urljoin(base.https, "channels.json"), dest: channelsFile },
        { url: urljoin(base.https, "channels.json.asc"), dest: `${channelsFile}.asc` },
      ]);
      const v = clientVerify(`${channelsFile}.asc`, channelsFile, [gpgOf(keyrings["image-signing"])], blacklist);
      if (v.ok) break;
      if (count > 0) throw new ClientError("SignatureError", `channels.json: ${v.why}`);
      await getKeyring("image-signing", "gpg/image-signing.tar.xz", "gpg/image-signing.tar.xz.asc", "image-master", true);
    }
    const channels = readJson<Record<string, Record<string, unknown>>>(channelsFile, "channels.json");
    for (const [name, ch] of Object.entries(channels)) {
      // Channels.from_json reads every channel's devices: one without them breaks all (§5.1).
      if (typeof ch.devices !== "object" || ch.devices === null) throw new ClientError("KeyError", `'devices' (channel ${name})`);
    }
    const channel = channels[o.channel];
    const entry = (channel?.devices as Record<string, { index: string; keyring?: { path: string; signature: string } }> | undefined)?.[
      o.device
    ];
    if (!channel || !entry) return run; // unknown channel or device: silently up to date (§3 step 5)

    if (entry.keyring) {
      await getKeyring("device-signing", entry.keyring.path, entry.keyring.signature, "image-signing", true);
    }
    const signing = () => [keyrings["image-signing"], ...(keyrings["device-signing"] ? [keyrings["device-signing"]] : [])].map(gpgOf);

    // _get_index: the .asc is always the index URL + ".asc".
    const indexFile = join(scratch, "index.json");
    const indexUrl = urljoin(base.https, entry.index);
    await http.getFiles([
      { url: indexUrl, dest: indexFile },
      { url: `${indexUrl}.asc`, dest: `${indexFile}.asc` },
    ]);
    const iv = clientVerify(`${indexFile}.asc`, indexFile, signing(), blacklist);
    if (!iv.ok) throw new ClientError("SignatureError", `index.json: ${iv.why}`);
    const index = readJson<IndexDoc>(indexFile, "index.json");
    const stamp = GENERATED_AT.exec(String(index.global?.generated_at));
    if (!String(index.global?.generated_at).split(" ").includes("UTC")) throw new ClientError("AssertionError", "timestamps must be UTC");
    if (!stamp) throw new ClientError("AssertionError", `time data ${JSON.stringify(index.global?.generated_at)} does not match format`);

    // _calculate_winner: an alias re-targeted away from channel_target means a reinstall from 0.
    const alias = typeof channel.alias === "string" ? channel.alias : undefined;
    const build = alias === undefined || o.channelTarget === undefined || alias === o.channelTarget ? o.buildNumber : 0;
    const images = (index.images ?? []).map((i) => ({ ...i, files: i.files ?? [] })) as Image[];
    let candidates: Image[][];
    try {
      candidates = getCandidates(images, build);
    } catch (err) {
      throw new ClientError("AssertionError", err instanceof Error ? err.message : String(err));
    }
    const choice = choosePath(candidates, {
      channel: alias ?? o.channelTarget ?? null,
      machineId: o.machineId ?? "0123456789abcdef0123456789abcdef",
      phaseOverride: o.phaseOverride,
    });
    run.phase = choice.phase;
    if (choice.winner.length === 0) return run;
    run.path = pathLabel(choice.winner);

    // _download_files: files over http_base, sha256 checked while downloading, then signatures.
    const files = iterPath(choice.winner).map(({ file }) => ({
      data: join(recoveryDir, basename(file.path)),
      asc: join(recoveryDir, basename(file.signature)),
      file,
    }));
    await http.getFiles(
      files.flatMap(({ data, asc, file }) => [
        { url: urljoin(base.http, file.path), dest: data, checksum: file.checksum },
        { url: urljoin(base.http, file.signature), dest: asc },
      ]),
    );
    for (const { data, asc } of files) {
      const v = clientVerify(asc, data, signing(), blacklist);
      if (!v.ok) throw new ClientError("SignatureError", `${basename(data)}: ${v.why}`);
    }

    // _move_files and _prepare_recovery.
    for (const type of ["image-master", "image-signing", "device-signing"]) {
      const k = keyrings[type];
      if (!k) continue;
      copyFileSync(k, join(recoveryDir, `${type}.tar.xz`));
      copyFileSync(`${k}.asc`, join(recoveryDir, `${type}.tar.xz.asc`));
    }
    run.ubuntuCommand = ubuntuCommand(choice.winner, { deviceKeyring: keyrings["device-signing"] !== undefined });
    writeFileSync(join(recoveryDir, "ubuntu_command"), run.ubuntuCommand);
    run.outcome = "downloaded";
    if (o.apply === false) return run;

    const rec = runRecovery({
      cache: cacheDir,
      data: join(work, "userdata"),
      archiveMaster: o.archiveMaster,
      blacklist: keyrings.blacklist,
      scratch,
      now,
    });
    run.recoveryLog = rec.log;
    run.outcome = "applied";
    const buildFile = join(systemDir, "etc/ubuntu-build");
    if (existsSync(buildFile)) run.buildNumber = Number(readFileSync(buildFile, "utf8").trim());
    const ini = join(systemDir, "etc/system-image/channel.ini");
    if (existsSync(ini)) run.channelIni = readFileSync(ini, "utf8");
    return run;
  }
}
