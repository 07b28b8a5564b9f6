/**
 * Key lifecycle through the real CLI, judged by verify-tree and by real GnuPG with the
 * client's rule (client-protocol §4.3): rotate-key (image-signing, device-signing),
 * blacklist-key, the global lock, and the image-signing keyring's auto-renewal.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { acquireGlobalLock } from "../../src/io/lock.js";
import { renewExpiringKeyrings } from "../../src/keys/renew.js";
import { listSignatures } from "../../src/keys/resign.js";
import { readKeyringTarball } from "../../src/pgp/keyring.js";
import { loadSigningKey } from "../../src/pgp/keys.js";
import { clientVerify, primaryFingerprints, unpackKeyring } from "../helpers/device-gpg.js";
import { REPO } from "../helpers/instance.js";
import { expectTreeVerifies, publishedTree, snapshot } from "./fixture.js";

const scratch = () => mkdtempSync(join(tmpdir(), "si-sec-"));
const keyringGpg = (file: string) => unpackKeyring(file, scratch()).gpg ?? Buffer.alloc(0);
const fpr = async (keys: string, name: string) => (await loadSigningKey(keys, name)).fingerprint.toUpperCase();

describe("si rotate-key image-signing", () => {
  it("publishes a keyring trusted by image-master with the new and previous key, and re-signs every image-signing signature", async () => {
    const fx = await publishedTree();
    const { keys, publish } = fx.inst;
    const gpg = (n: string) => join(publish, "gpg", `${n}.tar.xz`);
    const oldFpr = await fpr(keys, "image-signing");
    const oldKeyring = keyringGpg(gpg("image-signing"));
    const master = keyringGpg(gpg("image-master"));

    const out = fx.ok("rotate-key", "image-signing", "--bits", "2048", "--grace", "0");
    const newFpr = await fpr(keys, "image-signing");
    expect(newFpr).not.toBe(oldFpr);
    expect(out).toContain(`I: image-signing: ${oldFpr} -> ${newFpr}\n`);

    // The old private key is kept, owner-only.
    const kept = readdirSync(join(keys, "image-signing")).filter((f) => f.startsWith("private.asc.old-"));
    expect(kept).toHaveLength(1);
    expect(statSync(join(keys, "image-signing", kept[0])).mode & 0o777).toBe(0o600);
    expect(statSync(join(keys, "image-signing", "private.asc")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(keys, "image-signing", kept[0]), "utf8")).toContain("PRIVATE KEY");

    // The published keyring: signed by image-master, holds new + previous.
    expect(clientVerify(`${gpg("image-signing")}.asc`, gpg("image-signing"), [master]).ok).toBe(true);
    const newKeyring = keyringGpg(gpg("image-signing"));
    expect(primaryFingerprints([newKeyring])).toEqual(new Set([oldFpr, newFpr]));

    // Every signature image-signing made now comes from the new key; nothing else changed signer.
    const sigs = await listSignatures(publish);
    const byImageSigning = sigs.filter((s) => !s.includes("/gpg/") || s.endsWith("device-signing.tar.xz.asc"));
    expect(byImageSigning.length).toBeGreaterThanOrEqual(6); // channels, index, 2 pool, version + sidecar, device-signing keyring
    for (const asc of byImageSigning) {
      const r = clientVerify(asc, asc.slice(0, -4), [newKeyring]);
      expect(r, asc).toEqual({ ok: true, why: "" });
      // A device that still caches the old keyring refuses it (and so re-fetches the keyring).
      expect(clientVerify(asc, asc.slice(0, -4), [oldKeyring]).ok, asc).toBe(false);
    }
    expect(clientVerify(`${gpg("image-master")}.asc`, gpg("image-master"), [keyringGpg(gpg("archive-master"))]).ok).toBe(true);
    await expectTreeVerifies(fx);
    expect(existsSync(join(fx.inst.state, "rotate-image-signing.json"))).toBe(false);

    // A second rotation drops the first key: the keyring holds the current and previous only.
    fx.ok("rotate-key", "image-signing", "--bits", "2048", "--grace", "0", "--discard-old");
    const third = await fpr(keys, "image-signing");
    expect(primaryFingerprints([keyringGpg(gpg("image-signing"))])).toEqual(new Set([newFpr, third]));
    expect(readdirSync(join(keys, "image-signing")).filter((f) => f.startsWith("private.asc.old-"))).toHaveLength(1);
    await expectTreeVerifies(fx);
  }, 120_000);

  it("after a SIGKILL mid-rotation the tree still verifies, and a re-run finishes the same rotation", async () => {
    const fx = await publishedTree();
    const { keys, publish } = fx.inst;
    const oldFpr = await fpr(keys, "image-signing");
    const chanAsc = join(publish, "channels.json.asc");
    const before = readFileSync(chanAsc, "utf8");
    const oldKeyring = keyringGpg(join(publish, "gpg/image-signing.tar.xz"));
    const index = join(publish, "devel/mako/index.json");
    // A long grace: killed after channels.json is re-signed, before the rest is.
    const { spawn } = await import("node:child_process");
    const child = spawn(
      process.execPath,
      [join(REPO, "bin/si.js"), "--config", fx.inst.config, "rotate-key", "image-signing", "--bits", "2048", "--grace", "600"],
      { stdio: "ignore" },
    );
    for (let i = 0; i < 600 && readFileSync(chanAsc, "utf8") === before; i++) await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const newFpr = await fpr(keys, "image-signing");
    expect(newFpr).not.toBe(oldFpr);
    // Mixed signatures (channels.json new, index.json still old), all trusted by the
    // published transition keyring.
    expect(clientVerify(chanAsc, chanAsc.slice(0, -4), [oldKeyring]).ok).toBe(false);
    expect(clientVerify(`${index}.asc`, index, [oldKeyring]).ok).toBe(true);
    await expectTreeVerifies(fx);

    const out = fx.ok("rotate-key", "image-signing", "--grace", "0");
    expect(out).toContain(`I: image-signing: ${oldFpr} -> ${newFpr} (finished an interrupted rotation)\n`);
    const newKeyring = keyringGpg(join(publish, "gpg/image-signing.tar.xz"));
    expect(clientVerify(`${index}.asc`, index, [newKeyring])).toEqual({ ok: true, why: "" });
    await expectTreeVerifies(fx);
  }, 120_000);

  it("waits for the global lock, then gives up with a clear message and changes nothing", async () => {
    const fx = await publishedTree();
    const before = snapshot(fx.inst.base);
    const lock = acquireGlobalLock(fx.inst.state);
    try {
      const r = await fx.inst.siAsync("rotate-key", "image-signing", "--bits", "2048", "--lock-timeout", "1");
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/Cannot rotate the image-signing key: the global lock .* stayed busy for 1 s/);
    } finally {
      lock.release();
    }
    expect(snapshot(fx.inst.base)).toEqual(before);
  }, 60_000);

  it("refuses other keys with a usage error", async () => {
    const fx = await publishedTree();
    const r = fx.inst.si("rotate-key", "image-master");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("only image-signing and device-signing can be rotated");
  }, 60_000);
});

describe("si rotate-key device-signing", () => {
  it("rebuilds the device-signing keyring signed by image-signing and publishes it", async () => {
    const fx = await publishedTree();
    const { keys, publish } = fx.inst;
    const oldFpr = await fpr(keys, "device-signing");
    fx.ok("rotate-key", "device-signing", "--bits", "2048", "--grace", "0");
    const newFpr = await fpr(keys, "device-signing");
    expect(newFpr).not.toBe(oldFpr);
    const ds = join(publish, "gpg/device-signing.tar.xz");
    expect(primaryFingerprints([keyringGpg(ds)])).toEqual(new Set([newFpr]));
    expect(clientVerify(`${ds}.asc`, ds, [keyringGpg(join(publish, "gpg/image-signing.tar.xz"))]).ok).toBe(true);
    await expectTreeVerifies(fx);
  }, 60_000);
});

describe("si blacklist-key", () => {
  it("refuses the current image-signing key without --force, and leaves everything as it was", async () => {
    const fx = await publishedTree();
    const before = snapshot(fx.inst.base);
    const current = await fpr(fx.inst.keys, "image-signing");
    const r = fx.inst.si("blacklist-key", current);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`Cannot blacklist ${current}: it is the current image-signing key`);
    expect(snapshot(fx.inst.base)).toEqual(before);
  }, 60_000);

  it("blacklists a rotated-out key: the published blacklist holds it, signed by image-master, and survives generate-keyrings --force", async () => {
    const fx = await publishedTree();
    const { keys, publish } = fx.inst;
    const oldFpr = await fpr(keys, "image-signing");
    fx.ok("rotate-key", "image-signing", "--bits", "2048", "--grace", "0");
    const out = fx.ok("blacklist-key", oldFpr.toLowerCase().replace(/(.{4})/g, "$1 "));
    expect(out).toContain(`I: blacklisted ${oldFpr}\n`);
    const bl = join(publish, "gpg/blacklist.tar.xz");
    expect(primaryFingerprints([keyringGpg(bl)])).toEqual(new Set([oldFpr]));
    expect(clientVerify(`${bl}.asc`, bl, [keyringGpg(join(publish, "gpg/image-master.tar.xz"))]).ok).toBe(true);
    // The tree no longer holds any signature by the blacklisted key: devices keep updating.
    const idx = join(publish, "devel/mako/index.json");
    expect(clientVerify(`${idx}.asc`, idx, [keyringGpg(join(publish, "gpg/image-signing.tar.xz"))], keyringGpg(bl)).ok).toBe(true);
    await expectTreeVerifies(fx);

    // A rebuild of every keyring keeps the blacklisted key.
    fx.ok("generate-keyrings", "--force");
    const { keys: listed } = await readKeyringTarball(join(fx.inst.keyrings, "blacklist.tar.xz"));
    expect(listed.map((k) => k.fingerprint.toUpperCase())).toEqual([oldFpr]);
    // Again: nothing added twice.
    expect(fx.ok("blacklist-key", oldFpr)).toContain(`W: ${oldFpr} was already blacklisted`);
  }, 120_000);

  it("takes a foreign key from --key-file, and refuses unknown fingerprints and bad input", async () => {
    const fx = await publishedTree();
    const foreign = join(scratch(), "foreign.asc");
    const { generateKey } = await import("../../src/pgp/keys.js");
    const k = await generateKey({ name: "Stolen", email: "x@example.net", bits: 2048 });
    const { writeFileSync } = await import("node:fs");
    writeFileSync(foreign, k.publicArmored);
    const unknown = k.fingerprint.toUpperCase();
    const r1 = fx.inst.si("blacklist-key", unknown);
    expect(r1.status).toBe(1);
    expect(r1.stderr).toContain(`Cannot blacklist ${unknown}: not one of this instance's keys`);
    const r2 = fx.inst.si("blacklist-key", "ABCD");
    expect(r2.status).toBe(2);
    expect(r2.stderr).toContain("give the full 40-hex-digit v4 fingerprint");
    fx.ok("blacklist-key", unknown, "--key-file", foreign);
    expect(primaryFingerprints([keyringGpg(join(fx.inst.publish, "gpg/blacklist.tar.xz"))])).toEqual(new Set([unknown]));
    await expectTreeVerifies(fx);
  }, 60_000);
});

describe("keyring_auto_renew_days", () => {
  it("renews the image-signing keyring only when it expires within the window", async () => {
    const fx = await publishedTree();
    const file = join(fx.inst.keyrings, "image-signing.tar.xz");
    const before = (await readKeyringTarball(file)).meta.expiry!;
    const later = new Date(Date.now() + 400 * 86400_000);
    const quiet = await renewExpiringKeyrings(fx.config, 30, { now: later });
    expect(quiet.renewed).toBe(false);
    const r = await renewExpiringKeyrings(fx.config, 400, { now: later });
    expect(r.renewed).toBe(true);
    const after = (await readKeyringTarball(file)).meta.expiry!;
    expect(after).toBeGreaterThan(before);
    const pub = join(fx.inst.publish, "gpg/image-signing.tar.xz");
    expect((await readKeyringTarball(pub)).meta.expiry).toBe(after);
    expect(clientVerify(`${pub}.asc`, pub, [keyringGpg(join(fx.inst.publish, "gpg/image-master.tar.xz"))]).ok).toBe(true);
    await expectTreeVerifies(fx);
  }, 60_000);

  it("is read from the config as an optional number", async () => {
    const { loadConfig } = await import("../../src/config/load.js");
    const { makeInstance } = await import("../helpers/instance.js");
    const on = makeInstance({ extraConfig: "keyring_auto_renew_days = 45\n", withKeys: false });
    expect((await loadConfig(on.config)).keyring_auto_renew_days).toBe(45);
    const off = makeInstance({ withKeys: false });
    expect((await loadConfig(off.config)).keyring_auto_renew_days).toBeUndefined();
  });
});
