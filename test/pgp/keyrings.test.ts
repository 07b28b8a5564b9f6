import { describe, expect, it, beforeAll } from "vitest";
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GpgHome } from "../helpers/gpg.js";
import { makeInstance, type Instance } from "../helpers/instance.js";
import { readKeyringTarball } from "../../src/pgp/keyring.js";

/** Members of a tar.xz as python's tarfile sees them: name, format-relevant fields. */
function pyMembers(path: string): { name: string; type: string; mode: number }[] {
  const out = execFileSync(
    "python3",
    [
      "-c",
      "import tarfile,sys,json; t=tarfile.open(sys.argv[1],'r:xz'); print(json.dumps([{'name':m.name,'type':m.type.decode(),'mode':m.mode} for m in t]))",
      path,
    ],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as { name: string; type: string; mode: number }[];
}

const CHAIN: [keyring: string, signer: string][] = [
  ["archive-master", "archive-master"],
  ["image-master", "archive-master"],
  ["image-signing", "image-master"],
  ["blacklist", "image-master"],
  ["device-signing", "image-signing"],
];

describe("si generate-keys / generate-keyrings: the trust chain of server-reference §1.4", () => {
  let inst: Instance;
  beforeAll(() => {
    inst = makeInstance({ withKeys: false });
    const keys = inst.si("generate-keys", "--bits", "2048", "--email", "ops@example.org", "--prefix", "Test");
    expect(keys.status, keys.stderr).toBe(0);
    const rings = inst.si("generate-keyrings");
    expect(rings.status, rings.stderr).toBe(0);
  });

  it("stores private keys mode 0600 in 0700 directories and refuses to overwrite them", () => {
    for (const [name] of CHAIN) {
      expect(statSync(join(inst.keys, name, "private.asc")).mode & 0o777).toBe(0o600);
      expect(statSync(join(inst.keys, name)).mode & 0o777).toBe(0o700);
    }
    const before = readFileSync(join(inst.keys, "image-signing/private.asc"));
    const again = inst.si("generate-keys", "--bits", "2048");
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('W: The key "image-signing" already exists');
    expect(readFileSync(join(inst.keys, "image-signing/private.asc"))).toEqual(before);
  });

  it.each(CHAIN)("%s.tar.xz.asc verifies with gpg holding only %s's public key", (keyring, signer) => {
    const tarball = join(inst.keyrings, `${keyring}.tar.xz`);
    const gpg = new GpgHome().importKey(join(inst.keys, signer, "public.asc"));
    const r = gpg.verify(tarball + ".asc", tarball);
    expect(r.ok, r.output).toBe(true);
    // Any other key of the chain must not be able to stand in for the right parent.
    const wrong = CHAIN.map(([, s]) => s).find((s) => s !== signer)!;
    expect(new GpgHome().importKey(join(inst.keys, wrong, "public.asc")).verify(tarball + ".asc", tarball).ok).toBe(false);
  });

  it("a tampered tarball or signature fails gpg --verify", () => {
    const tarball = join(inst.keyrings, "image-signing.tar.xz");
    const gpg = new GpgHome().importKey(join(inst.keys, "image-master", "public.asc"));
    const copy = join(inst.base, "tampered.tar.xz");
    copyFileSync(tarball, copy);
    const bytes = readFileSync(copy);
    bytes[bytes.length >> 1] ^= 1;
    writeFileSync(copy, bytes);
    expect(gpg.verify(tarball + ".asc", copy).ok).toBe(false);
    const sig = readFileSync(tarball + ".asc", "utf8").split("\n");
    sig[3] = sig[3].slice(0, 10) + (sig[3][10] === "A" ? "B" : "A") + sig[3].slice(11);
    writeFileSync(copy + ".asc", sig.join("\n"));
    expect(gpg.verify(copy + ".asc", tarball).ok).toBe(false);
  });

  it("tarballs hold exactly keyring.json then keyring.gpg in GNU format, keyring.json in the recovery's layout", async () => {
    for (const [name] of CHAIN) {
      const path = join(inst.keyrings, `${name}.tar.xz`);
      expect(pyMembers(path).map((m) => m.name)).toEqual(["keyring.json", "keyring.gpg"]);
      const raw = execFileSync("sh", ["-c", `xz -dc '${path}' | head -c 512`]);
      expect(raw.subarray(257, 265).toString("latin1")).toBe("ustar  \0"); // GNU magic
      const json = execFileSync("sh", ["-c", `xz -dc '${path}' | tar -xOf - keyring.json`], { encoding: "utf8" });
      expect(json).toMatch(new RegExp(`^\\{\\n    "(expiry": \\d+,\\n    ")?type": "${name}"\\n\\}\\n$`));
      const ring = await readKeyringTarball(path);
      expect(ring.meta.type).toBe(name);
      expect(ring.keys.length).toBe(name === "blacklist" ? 0 : 1);
    }
    const now = Date.now() / 1000;
    const signing = await readKeyringTarball(join(inst.keyrings, "image-signing.tar.xz"));
    expect(signing.meta.expiry! - now).toBeGreaterThan(729 * 86400);
    expect(signing.meta.expiry! - now).toBeLessThan(731 * 86400);
    const device = await readKeyringTarball(join(inst.keyrings, "device-signing.tar.xz"));
    expect(Math.round((device.meta.expiry! - now) / 86400)).toBe(31);
    expect((await readKeyringTarball(join(inst.keyrings, "archive-master.tar.xz"))).meta.expiry).toBeUndefined();
  });

  it("refuses to replace keyrings without --force, and replaces them all with it", () => {
    const before = readFileSync(join(inst.keyrings, "image-master.tar.xz.asc"), "utf8");
    const r = inst.si("generate-keyrings");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^si: error: Cannot build keyrings: .*already exist \(use --force/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(readFileSync(join(inst.keyrings, "image-master.tar.xz.asc"), "utf8")).toBe(before);
    const f = inst.si("generate-keyrings", "--force");
    expect(f.status, f.stderr).toBe(0);
    const gpg = new GpgHome().importKey(join(inst.keys, "archive-master", "public.asc"));
    expect(gpg.verify(join(inst.keyrings, "image-master.tar.xz.asc"), join(inst.keyrings, "image-master.tar.xz")).ok).toBe(true);
  });

  it("honours the expiry periods of [global]", async () => {
    const other = makeInstance({ extraConfig: "image_signing_expiry_days = 10\ndevice_signing_expiry_days = 2\n" });
    expect(other.si("generate-keyrings").status).toBe(0);
    const now = Date.now() / 1000;
    const s = await readKeyringTarball(join(other.keyrings, "image-signing.tar.xz"));
    expect(Math.round((s.meta.expiry! - now) / 86400)).toBe(10);
    const d = await readKeyringTarball(join(other.keyrings, "device-signing.tar.xz"));
    expect(Math.round((d.meta.expiry! - now) / 86400)).toBe(2);
  });

  it("reports a missing or unreadable key in one line, without a stack trace", () => {
    const other = makeInstance({ withKeys: false });
    const r = other.si("generate-keyrings");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("W: skipped archive-master (missing key: archive-master)");
    const broken = makeInstance();
    writeFileSync(join(broken.keys, "image-master/private.asc"), "not a key");
    const b = broken.si("generate-keyrings");
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/^si: error: Cannot read key .*image-master\/private.asc: /);
    expect(b.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("si import-keys migrates a key from a reference GnuPG home", () => {
    const home = new GpgHome();
    execFileSync(
      "gpg",
      [
        "--homedir",
        home.dir,
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Old Signing <old@example.com>",
        "rsa2048",
        "sign,cert",
        "never",
      ],
      { stdio: "ignore" },
    );
    const other = makeInstance({ withKeys: false });
    const r = other.si("import-keys", "--gnupg-home", home.dir, "--name", "image-signing");
    expect(r.status, r.stderr).toBe(0);
    expect(statSync(join(other.keys, "image-signing/private.asc")).mode & 0o777).toBe(0o600);
    const fpr = execFileSync("gpg", ["--homedir", home.dir, "--with-colons", "--list-keys"], { encoding: "utf8" })
      .split("\n")
      .find((l) => l.startsWith("fpr:"))!
      .split(":")[9];
    expect(r.stdout).toContain(fpr);
    const bad = other.si("import-keys", "--gnupg-home", join(other.base, "nope"), "--name", "image-master");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^si: error: Cannot import key from /);
  });
});
