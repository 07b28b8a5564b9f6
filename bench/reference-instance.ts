/**
 * The reference (Python) server for bench:reference, run by its own programs from a working
 * copy of a local checkout of the public xfonelabs/system-image-server repository:
 * `tools/generate-keys` (after its one-character fix: a missing comma after the
 * device-signing tuple), `bin/generate-keyrings`, `bin/si-shell` (channel `test`, device
 * `mako`, keyrings published) and `bin/import-images`. It runs with Debian's python3 and
 * python3-gpg, the environment cleaned of PYTHONPATH/PYTHONHOME (a pyenv python must not win).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { measure, type Cost } from "./proctree.js";

const PY = "/usr/bin/python3";
const KEYS = ["archive-master", "image-master", "image-signing", "device-signing", "blacklist"];
/** Debian packages the reference needs to import an http image with a delta. */
const DEBIAN_DEPS = ["python3", "python3-gpg", "gpg", "gpg-agent", "xz-utils", "time", "tar"];

export const pyEnv = (root?: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", PYTHONDONTWRITEBYTECODE: "1" };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  if (root) env.SYSTEM_IMAGE_ROOT = root;
  return env;
};

/** The Debian packages missing for the reference (empty when it can run). */
export function missingDebianDeps(): string[] {
  const missing = DEBIAN_DEPS.filter((p) => {
    const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", p], { encoding: "utf8" });
    return r.status !== 0 || !r.stdout.includes("install ok installed");
  });
  if (!missing.includes("python3-gpg") && spawnSync(PY, ["-c", "import gpg"], { env: pyEnv() }).status !== 0) missing.push("python3-gpg");
  return missing;
}

/** Stops the gpg-agents gpgme started for these GNUPGHOMEs (only those: by homedir). */
function killAgents(dirs: string[]): void {
  for (const d of dirs) if (existsSync(d)) spawnSync("gpgconf", ["--homedir", d, "--kill", "gpg-agent"], { stdio: "ignore" });
}

/**
 * A working copy of the reference in `dest` (made once): `src` is a checkout, or a bare git
 * directory (then its HEAD is exported). Applies the keygen fix and generates the test keys.
 */
export function prepareReference(src: string, dest: string, log: (s: string) => void): string {
  if (!existsSync(join(dest, "tools/keys/generated"))) {
    rmSync(dest, { recursive: true, force: true });
    mkdirSync(dest, { recursive: true });
    if (existsSync(join(src, "bin/import-images")))
      cpSync(src, dest, { recursive: true, filter: (p) => !p.includes("/.git/") && !p.endsWith("/.git") });
    else if (existsSync(join(src, "HEAD")) && existsSync(join(src, "objects")))
      execFileSync("sh", ["-c", `git --git-dir='${src}' archive HEAD | tar -x -C '${dest}'`]);
    else throw new Error(`--reference ${src}: neither a checkout of system-image-server (no bin/import-images) nor a bare git directory`);
    execFileSync("chmod", ["-R", "u+w", dest]);
    const keygen = join(dest, "tools/generate-keys");
    const text = readFileSync(keygen, "utf8");
    // Upstream lacks the comma after the device-signing tuple, so the tuple is "called".
    const fixed = text.replace(/("rsa2048"\))\n(\s+\("blacklist")/, "$1,\n$2");
    if (fixed !== text) log("fixing the reference's tools/generate-keys (missing comma)");
    writeFileSync(keygen, fixed);
    mkdirSync(join(dest, "tools/keys"), { recursive: true });
    log("generating the reference's test keys (tools/generate-keys: rsa4096 x2, rsa2048 x3)");
    try {
      execFileSync(PY, ["tools/generate-keys"], { cwd: dest, env: pyEnv(), stdio: ["ignore", "ignore", "inherit"] });
    } finally {
      killAgents(KEYS.map((k) => join(dest, "tools/keys", k)));
    }
  }
  return dest;
}

export interface RefInstance {
  base: string;
  publish: string;
  /** Runs bin/import-images once, measured; its output goes to `logFile`. */
  importImages: (logFile: string) => Promise<Cost>;
  /** Stops the gpg-agents of the instance's key directories. */
  stopAgents: () => void;
}

/** A fresh instance in `base` (replaced) whose channel `test` imports `farmUrl`/rootfs.tar.xz. */
export function makeRefInstance(server: string, base: string, farmUrl: string): RefInstance {
  rmSync(base, { recursive: true, force: true });
  for (const d of ["etc", "secret/gpg/keys", "secret/gpg/keyrings", "www", "state"]) mkdirSync(join(base, d), { recursive: true });
  chmodSync(join(base, "secret"), 0o700);
  // The GNUPGHOMEs without agent sockets.
  for (const k of KEYS)
    cpSync(join(server, "tools/keys", k), join(base, "secret/gpg/keys", k), { recursive: true, filter: (p) => !/\/S\.[^/]*$/.test(p) });
  writeFileSync(
    join(base, "etc/config"),
    [
      "[global]",
      `base_path = ${base}`,
      "channels = test",
      "gpg_key_path = secret/gpg/keys/",
      "gpg_keyring_path = secret/gpg/keyrings/",
      "publish_path = www/",
      "state_path = state/",
      "public_fqdn = system-image.example.net",
      "public_http_port = 80",
      "public_https_port = 443",
      "",
      "[channel_test]",
      "type = auto",
      "versionbase = 1",
      "fullcount = 15",
      "deltabase = test",
      "files = ubuntu, keyring, version",
      `file_ubuntu = http;${farmUrl}/rootfs.tar.xz;name=ubuntu,monitor=${farmUrl}/rootfs.version`,
      "file_keyring = keyring;archive-master",
      "file_version = version",
      "",
    ].join("\n"),
  );
  const agentDirs = () => [
    ...KEYS.map((k) => join(base, "secret/gpg/keys", k)),
    ...readdirSync(join(base, "secret/gpg/keyrings"), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(base, "secret/gpg/keyrings", e.name)),
  ];
  const stopAgents = () => killAgents(agentDirs());
  try {
    // bin/generate-keyrings puts 'lib' first on sys.path: run from the server's directory.
    execFileSync(PY, ["bin/generate-keyrings"], { cwd: server, env: pyEnv(base), stdio: ["ignore", "ignore", "inherit"] });
    mkdirSync(join(base, "www/test/mako"), { recursive: true });
    const kr = join(base, "secret/gpg/keyrings/device-signing.tar.xz");
    const dev = join(base, "www/test/mako/device.tar.xz");
    const script = [
      'pub.create_channel("test")',
      'pub.create_device("test", "mako")',
      "import shutil",
      `shutil.copy("${kr}", "${dev}")`,
      `shutil.copy("${kr}.asc", "${dev}.asc")`,
      `pub.set_device_keyring("test", "mako", "${dev}")`,
      ...["image-master", "image-signing", "archive-master"].map((k) => `pub.publish_keyring("${k}")`),
      'print("CHANNELS", pub.list_channels())',
      "",
    ].join("\n");
    const sh = spawnSync(PY, [join(server, "bin/si-shell")], { cwd: base, env: pyEnv(base), input: script, encoding: "utf8" });
    if (sh.status !== 0 || !/CHANNELS .*test/.test(sh.stdout))
      throw new Error(`Cannot set up the reference instance in ${base}: bin/si-shell said:\n${sh.stdout}${sh.stderr}`);
  } finally {
    stopAgents();
  }
  return {
    base,
    publish: join(base, "www"),
    stopAgents,
    async importImages(logFile) {
      const c = await measure(PY, [join(server, "bin/import-images"), "-vvv"], {
        exactEnv: pyEnv(base),
        cwd: base,
        stdout: "capture",
        stderr: "stdout",
      });
      writeFileSync(logFile, c.stdout ?? "");
      return c;
    },
  };
}
