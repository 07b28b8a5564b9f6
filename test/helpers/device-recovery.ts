/**
 * The recovery's `system-image-upgrader` (client-protocol §8.3), for the device model:
 * reads `<cache>/recovery/ubuntu_command` and applies it to `<cache>/system`.
 *   load_keyring: unpack, grep `^    "type": ` / `^    "expiry": ` (the script's own parser),
 *                 verify with the signer type (archive-master comes from the recovery image),
 *                 then the blacklist from the data partition once image-master is in;
 *   format system: empty the system directory and set FULL_IMAGE=1 for the rest;
 *   update X X.asc: refuse X if the blacklist verifies it, need device-signing OR image-signing
 *                 (plain gpg --verify), then in /cache: unless FULL_IMAGE, extract `removed` and
 *                 `while read file; do rm -Rf $file; done` (the unquoted loop, in /bin/sh), then
 *                 `xz -dc | tar --numeric-owner -xf -`, drop `removed`, move data/ away, delete X.
 * `set -e` in the script: a failing keyring or signature aborts the whole run.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ClientError } from "./device-http.js";
import { gpgVerify, unpackKeyring } from "./device-gpg.js";

export interface RecoveryInput {
  /** Stands for /cache: holds recovery/ (the client's cache partition) and system/. */
  cache: string;
  /** Stands for /data (userdata); `data/` members of updates are moved here. */
  data: string;
  /** /etc/system-image/archive-master.tar.xz of the recovery image (its .asc must sit beside it). */
  archiveMaster: string;
  /** The client's data-partition blacklist.tar.xz, if it downloaded one. */
  blacklist?: string;
  scratch: string;
  now?: Date;
}

export interface RecoveryResult {
  log: string[];
  /** Names of partition images the updates carried (partitions/<name>.img). */
  partitions: string[];
}

const SIGNER: Record<string, string> = {
  "archive-master": "",
  "image-master": "archive-master",
  "image-signing": "image-master",
  blacklist: "image-master",
  "device-signing": "image-signing",
};

/** grep "^    \"KEY\": " keyring.json | cut -d: -f2 | sed -e "s/[ \",]//g" */
function grepField(jsonText: string, key: string): string {
  const line = jsonText.split("\n").find((l) => l.startsWith(`    "${key}": `));
  return line === undefined ? "" : (line.split(":")[1] ?? "").replace(/[ ",]/g, "");
}

export function runRecovery(input: RecoveryInput): RecoveryResult {
  const log: string[] = [];
  const partitions: string[] = [];
  const loaded = new Map<string, Buffer>();
  const fail = (msg: string): never => {
    log.push(msg);
    throw new ClientError("RecoveryError", msg);
  };
  const verifySignature = (type: string, asc: string): boolean => {
    const blacklist = loaded.get("blacklist");
    if (blacklist && blacklist.length > 0 && gpgVerify(asc, asc.slice(0, -4), [blacklist]).ok) {
      log.push(`File signed by a blacklisted key: ${asc}`);
      return false;
    }
    const keys = loaded.get(type);
    if (!keys) return false; // "Keyring doesn't exist"
    return gpgVerify(asc, asc.slice(0, -4), [keys]).ok;
  };
  const installKeyring = (tarball: string, asc: string): void => {
    if (!existsSync(tarball) || !existsSync(asc)) fail(`Missing keyring files: ${tarball} => ${asc}`);
    const k = unpackKeyring(tarball, input.scratch);
    if (k.jsonText === undefined || k.gpg === undefined) fail(`Invalid keyring: ${tarball}`);
    const expiry = grepField(k.jsonText!, "expiry");
    const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
    if (expiry !== "" && Number(expiry) < now) fail(`Keyring expired: ${tarball}`);
    const type = grepField(k.jsonText!, "type");
    if (type === "") fail(`Missing keyring type: ${tarball}`);
    if (loaded.has(type)) fail(`Keyring already loaded: ${tarball}`);
    const signer = SIGNER[type] ?? "unknown";
    if (signer !== "" && !verifySignature(signer, asc)) fail(`Invalid signature: ${tarball}`);
    loaded.set(type, k.gpg!);
  };
  const sh = (script: string, args: string[] = []) =>
    execFileSync("/bin/sh", ["-c", script, "sh", ...args], { cwd: input.cache, stdio: ["ignore", "pipe", "pipe"] });

  const recovery = join(input.cache, "recovery");
  const system = join(input.cache, "system");
  mkdirSync(input.data, { recursive: true });
  installKeyring(input.archiveMaster, `${input.archiveMaster}.asc`);
  let fullImage = false;
  for (const line of readFileSync(join(recovery, "ubuntu_command"), "utf8").split("\n")) {
    const [cmd, a, b] = line.trim().split(/\s+/);
    if (!cmd) continue;
    if (cmd === "load_keyring") {
      if (!existsSync(join(recovery, a)) || !existsSync(join(recovery, b))) {
        log.push(`Skipping missing file: ${a}`);
        continue;
      }
      log.push(`Loading keyring: ${a}`);
      installKeyring(join(recovery, a), join(recovery, b));
      if (loaded.has("image-master") && !loaded.has("blacklist") && input.blacklist && existsSync(`${input.blacklist}.asc`)) {
        log.push("Loading blacklist keyring");
        installKeyring(input.blacklist, `${input.blacklist}.asc`);
      }
    } else if (cmd === "format" && a === "system") {
      fullImage = true;
      rmSync(system, { recursive: true, force: true });
      mkdirSync(system);
      log.push("Formating: system");
    } else if (cmd === "mount" && a === "system") {
      mkdirSync(system, { recursive: true });
    } else if (cmd === "update") {
      const file = join(recovery, a);
      const asc = join(recovery, b);
      if (!existsSync(file) || !existsSync(asc)) {
        log.push(`Skipping missing file: ${a}`);
        continue;
      }
      if (!verifySignature("device-signing", asc) && !verifySignature("image-signing", asc)) fail(`Invalid signature: ${a}`);
      log.push(`Applying update: ${a}`);
      sh("rm -Rf partitions; rm -Rf data || true");
      if (!fullImage) {
        sh(
          'xz -dc "recovery/$1" | tar --numeric-owner -xf - removed >/dev/null 2>&1 || true\n' +
            "if [ -e removed ]; then while read file; do rm -Rf $file; done < removed; fi\nrm -f removed",
          [a],
        );
      }
      sh('xz -dc "recovery/$1" | tar --numeric-owner -xf -\nrm -f removed', [a]);
      sh('mv data/* "$1"/ 2>/dev/null || true; rm -Rf data || true', [input.data]);
      const parts = join(input.cache, "partitions");
      if (existsSync(parts)) for (const p of readdirSync(parts)) if (p.endsWith(".img")) partitions.push(p.slice(0, -4));
      rmSync(file);
    } else if (cmd !== "unmount") {
      log.push(`Unknown command: ${cmd}`);
    }
  }
  return { log, partitions };
}
