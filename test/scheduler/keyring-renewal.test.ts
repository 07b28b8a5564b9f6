/**
 * `[global] keyring_auto_renew_days` as an operator sees it (issue 9, SECURITY.md): an
 * instance whose published image-signing keyring expires in 10 days. With the option set, a
 * scheduled run of `si serve` (or a `si import-images` started by a timer) publishes a
 * keyring with a fresh expiry, signed by image-master (judged by real GnuPG), holding the
 * same keys; without it, a scheduled run leaves every keyring byte for byte as it was.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { Tree } from "../../src/tree/index.js";
import { primaryFingerprints, unpackKeyring } from "../helpers/device-gpg.js";
import { GpgHome } from "../helpers/gpg.js";
import { makeInstance, type Instance } from "../helpers/instance.js";
import { tmp } from "../importer/fixtures.js";
import { spawnServe } from "../helpers/serve-process.js";

const DAY = 86400;

/** keyring.json of a keyring tarball, read with GNU tar as the recovery would. */
function keyringJson(tarball: string): { type: string; expiry?: number } {
  return JSON.parse(execFileSync("tar", ["-xJOf", tarball, "keyring.json"], { encoding: "utf8" })) as { type: string; expiry?: number };
}

/** Primary fingerprint of an armoured public key, as GnuPG lists it. */
function gpgFingerprint(publicAsc: string): string {
  const out = execFileSync(
    "gpg",
    ["--homedir", new GpgHome().dir, "--batch", "--no-autostart", "--with-colons", "--show-keys", publicAsc],
    { encoding: "utf8" },
  );
  return out
    .split("\n")
    .find((l) => l.startsWith("fpr:"))!
    .split(":")[9];
}

/** Every file under gpg/ of the tree and under the keyring directory, with its bytes. */
function keyringFiles(inst: Instance): Map<string, string> {
  const out = new Map<string, string>();
  for (const dir of [join(inst.publish, "gpg"), inst.keyrings]) {
    for (const f of readdirSync(dir).sort()) out.set(join(dir, f), readFileSync(join(dir, f)).toString("base64"));
  }
  return out;
}

/**
 * The standard setup with keyrings built by `image_signing_expiry_days = 10`, then the config
 * switched to the usual 730 days plus `extra` (the [global] keys under test).
 */
async function expiringInstance(extra: string[]): Promise<Instance> {
  const inst = makeInstance({ extraConfig: "image_signing_expiry_days = 10\n" });
  const r = inst.si("generate-keyrings");
  expect(r.status, r.stderr).toBe(0);
  const tree = new Tree(await loadConfig(inst.config));
  await tree.createChannel("devel");
  await tree.createDevice("devel", "mako");
  for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) await tree.publishKeyring(k);
  const text = readFileSync(inst.config, "utf8").replace(
    "image_signing_expiry_days = 10\n",
    ["image_signing_expiry_days = 730", ...extra, ""].join("\n"),
  );
  writeFileSync(inst.config, text);
  return inst;
}

const published = (inst: Instance) => join(inst.publish, "gpg/image-signing.tar.xz");

/** What a user checks after a renewal: later expiry, image-master's signature, same keys. */
function expectRenewed(inst: Instance, before: { expiry: number; keys: Set<string> }, startedAt: number): void {
  const file = published(inst);
  const meta = keyringJson(file);
  expect(meta.type).toBe("image-signing");
  // image_signing_expiry_days (730) from the moment of the renewal.
  expect(meta.expiry!).toBeGreaterThan(before.expiry + 700 * DAY);
  expect(meta.expiry!).toBeGreaterThanOrEqual(Math.floor(startedAt / 1000) + 730 * DAY - 1);
  expect(meta.expiry!).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 730 * DAY + 1);
  // The built copy and the published one are the same files.
  expect(readFileSync(file)).toEqual(readFileSync(join(inst.keyrings, "image-signing.tar.xz")));
  expect(readFileSync(`${file}.asc`)).toEqual(readFileSync(join(inst.keyrings, "image-signing.tar.xz.asc")));
  // `gpg --verify` with image-master's public key alone: made by image-master's primary key.
  const masterAsc = join(inst.keys, "image-master/public.asc");
  const v = new GpgHome().importKey(masterAsc).verify(`${file}.asc`, file);
  expect(v.ok, v.output).toBe(true);
  expect(v.primary).toBe(gpgFingerprint(masterAsc));
  // With only image-signing's public key, gpg refuses it: not signed by the key it carries.
  expect(new GpgHome().importKey(join(inst.keys, "image-signing/public.asc")).verify(`${file}.asc`, file).ok).toBe(false);
  // Same key inside: nothing signed with it needs re-signing.
  expect(primaryFingerprints([unpackKeyring(file, tmp("si-renew-")).gpg!])).toEqual(before.keys);
}

function state(inst: Instance): { expiry: number; keys: Set<string> } {
  const file = published(inst);
  return { expiry: keyringJson(file).expiry!, keys: primaryFingerprints([unpackKeyring(file, tmp("si-renew-")).gpg!]) };
}

describe("keyring_auto_renew_days, end to end", () => {
  it("si serve with import_schedule: a scheduled run renews the expiring image-signing keyring and publishes it", async () => {
    const inst = await expiringInstance(["keyring_auto_renew_days = 30", "import_schedule = */2 * * * * *"]);
    const before = state(inst);
    expect(before.expiry - Date.now() / 1000).toBeLessThan(10 * DAY + 60);
    // verify-tree warns about it (30 days ahead by default) before the renewal.
    const warned = inst.si("verify-tree");
    expect(warned.status, warned.stdout + warned.stderr).toBe(0);
    expect(warned.stdout).toMatch(/gpg\/image-signing\.tar\.xz.*expires in 9 days/);

    const startedAt = Date.now();
    const s = spawnServe(
      inst.config,
      "--address",
      "127.0.0.1",
      "--http-port",
      "0",
      "--https-port",
      "off",
      "--admin-port",
      "off",
      "--workers",
      "1",
    );
    try {
      // The verification that follows each scheduled run: the run and the renewal are over.
      const verified = await s.waitFor((l) => String(l.msg).startsWith("tree verification: "), "the verification after the run");
      const renewed = s.lines.find((l) => String(l.msg).startsWith("renewed the image-signing keyring"));
      expect(renewed).toMatchObject({ level: "info", component: "scheduler", trigger: "schedule", keyring: "image-signing" });
      expect(s.lines.indexOf(renewed!)).toBeLessThan(s.lines.indexOf(verified));
      expect(verified.msg).toBe("tree verification: OK, 0 error(s), 0 warning(s)");
      // Later runs find it renewed: exactly one renewal however many ticks ran.
      await s.waitFor(() => s.lines.filter((l) => String(l.msg).startsWith("tree verification: ")).length >= 2, "a second scheduled run");
      expect(s.lines.filter((l) => String(l.msg).startsWith("renewed the image-signing keyring"))).toHaveLength(1);
      s.child.kill("SIGTERM");
      expect(await s.exit).toBe(0);
      expect(s.stderr()).toBe("");
    } finally {
      s.child.kill("SIGKILL");
    }
    expectRenewed(inst, before, startedAt);
    const after = inst.si("verify-tree");
    expect(after.status, after.stdout + after.stderr).toBe(0);
    expect(after.stdout).not.toMatch(/expires in/);
  });

  it("si import-images (timer or cron) renews too, once; the log says from which expiry to which", async () => {
    const inst = await expiringInstance(["keyring_auto_renew_days = 30"]);
    const before = state(inst);
    const startedAt = Date.now();
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const renewed = lines.filter((l) => String(l.msg).startsWith("renewed the image-signing keyring"));
    expect(renewed).toHaveLength(1);
    const iso = (s: number) => new Date(s * 1000).toISOString();
    expect(renewed[0].msg).toBe(
      `renewed the image-signing keyring: expiry ${iso(before.expiry)} -> ${iso(keyringJson(published(inst)).expiry!)}`,
    );
    expectRenewed(inst, before, startedAt);

    // Renewed: the next run changes nothing.
    const files = keyringFiles(inst);
    const again = await inst.siAsync("import-images");
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).not.toContain("renewed");
    expect(keyringFiles(inst)).toEqual(files);
  });

  it("a renewal that cannot sign is an error line and exit status 1, and the published keyring stays as it was", async () => {
    const inst = await expiringInstance(["keyring_auto_renew_days = 30"]);
    const files = keyringFiles(inst);
    // image-master kept offline (SECURITY.md): nothing can sign the new keyring.
    execFileSync("rm", [join(inst.keys, "image-master/private.asc")]);
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const errors = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect(String(errors[0].msg)).toMatch(/^Cannot renew the image-signing keyring: .*image-master/);
    expect(keyringFiles(inst)).toEqual(files);
  });

  it("off by default: scheduled runs and si import-images leave every keyring byte for byte as it was", async () => {
    const inst = await expiringInstance(["import_schedule = */2 * * * * *"]);
    const files = keyringFiles(inst);
    const s = spawnServe(
      inst.config,
      "--address",
      "127.0.0.1",
      "--http-port",
      "0",
      "--https-port",
      "off",
      "--admin-port",
      "off",
      "--workers",
      "1",
    );
    try {
      // The verification that follows each scheduled run: the run (and its after-run duties) is over.
      const verified = await s.waitFor((l) => String(l.msg).startsWith("tree verification: "), "a scheduled run");
      expect(verified.msg).toBe("tree verification: OK, 0 error(s), 1 warning(s)");
      s.child.kill("SIGTERM");
      expect(await s.exit).toBe(0);
    } finally {
      s.child.kill("SIGKILL");
    }
    expect(s.lines.some((l) => /renew/.test(String(l.msg)))).toBe(false);
    // One set of field names on every line, server events and scheduler lines alike (src/io/log.ts).
    expect(s.lines.some((l) => l.event === "listening") && s.lines.some((l) => l.component === "scheduler")).toBe(true);
    for (const l of s.lines) {
      expect(l, JSON.stringify(l)).toMatchObject({
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
        level: expect.stringMatching(/^(debug|info|warn|error)$/) as string,
        msg: expect.any(String) as string,
      });
      expect(l).not.toHaveProperty("message");
    }
    const r = await inst.siAsync("import-images");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/renew/);
    expect(keyringFiles(inst)).toEqual(files);
  });
});
