import { describe, expect, it, beforeAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import { loadSigningKey, readPublicKeys, type PublicKeyInfo } from "../../src/pgp/keys.js";
import { verifyFile, verifyDetached } from "../../src/pgp/verify.js";
import { SignatureError } from "../../src/errors.js";
import { GpgHome } from "../helpers/gpg.js";
import { TEST_KEYS } from "../helpers/instance.js";

const dir = mkdtempSync(join(tmpdir(), "si-sign-"));
const signer = new LocalSigner(TEST_KEYS);
const pub = (name: string) => join(TEST_KEYS, name, "public.asc");
let imageSigning: PublicKeyInfo[];

beforeAll(async () => {
  imageSigning = await readPublicKeys(readFileSync(pub("image-signing"), "utf8"));
});

describe("detached signatures", () => {
  it("verify with gpg against the public key alone, made by the primary key with SHA-512", async () => {
    const file = join(dir, "data.bin");
    writeFileSync(file, Buffer.from("hello system-image\n".repeat(1000)));
    await signer.signFile("image-signing", file);
    const gpg = new GpgHome().importKey(pub("image-signing"));
    const r = gpg.verify(file + ".asc", file);
    expect(r.ok, r.output).toBe(true);
    const fpr = (await loadSigningKey(TEST_KEYS, "image-signing")).fingerprint.toUpperCase();
    // Client rule (client-protocol §4.3): VALIDSIG's signing key must be the primary key.
    expect(r.validSig).toBe(fpr);
    expect(r.primary).toBe(fpr);
    const packets = execFileSync("gpg", ["--homedir", gpg.dir, "--list-packets", file + ".asc"], { encoding: "utf8" });
    expect(packets).toMatch(/digest algo 10/);
    expect(packets).toMatch(/sigclass 0x00/);
    expect(readFileSync(file + ".asc", "utf8")).toMatch(/^-----BEGIN PGP SIGNATURE-----\n/);
    // The CRC-24 line: without it GnuPG misparses armour whose packet length is a multiple
    // of 3 (about 1 signature in 150 failed gpg --verify before it was added).
    expect(readFileSync(file + ".asc", "utf8")).toMatch(/\n=[A-Za-z0-9+/]{4}\n-----END PGP SIGNATURE-----\n$/);
    await expect(verifyFile(file, readFileSync(file + ".asc", "utf8"), imageSigning)).resolves.toMatchObject({
      fingerprint: fpr.toLowerCase(),
    });
  });

  it("fails for a tampered file or a signature by another key, in gpg and in our verifier", async () => {
    const file = join(dir, "tamper.bin");
    writeFileSync(file, "original");
    await signer.signFile("image-signing", file);
    const sig = readFileSync(file + ".asc", "utf8");
    writeFileSync(file, "originaL");
    const gpg = new GpgHome().importKey(pub("image-signing"));
    expect(gpg.verify(file + ".asc", file).ok).toBe(false);
    await expect(verifyFile(file, sig, imageSigning)).rejects.toThrow(/Bad signature on .*tamper.bin: the data does not match/);

    writeFileSync(file, "original");
    await signer.signFile("device-signing", file, file + ".dev.asc");
    expect(gpg.verify(file + ".dev.asc", file).ok).toBe(false);
    await expect(verifyFile(file, readFileSync(file + ".dev.asc", "utf8"), imageSigning)).rejects.toThrow(/not in the trusted keyring/);
  });

  it("armours packets of every length so that gpg reads them, including lengths divisible by 3", async () => {
    const gpg = new GpgHome().importKey(pub("image-signing"));
    let found = 0;
    for (let i = 0; i < 3000 && found < 3; i++) {
      const data = Buffer.from(`payload ${i}`);
      const sig = await signer.signStream("image-signing", Readable.from([data]));
      const body = sig.split("\n\n")[1].split("\n=")[0].replace(/\n/g, "");
      if (Buffer.from(body, "base64").length % 3 !== 0) continue;
      found++;
      const file = join(dir, `len3-${i}`);
      writeFileSync(file, data);
      writeFileSync(file + ".asc", sig);
      const r = gpg.verify(file + ".asc", file);
      expect(r.ok, r.output).toBe(true);
    }
    expect(found).toBe(3);
  });

  it("rejects a signature by a blacklisted key", async () => {
    const data = Buffer.from("blacklisted");
    const sig = await signer.signStream("image-signing", Readable.from([data]));
    await expect(verifyDetached(data, sig, imageSigning, { blacklist: [imageSigning[0].fingerprint] })).rejects.toThrow(SignatureError);
    await expect(verifyDetached(data, sig, imageSigning)).resolves.toBeTruthy();
  });

  it("accepts gpg's primary-key signatures but rejects a signing subkey's, as the device client does", async () => {
    const home = new GpgHome();
    const gpg = (...a: string[]) =>
      execFileSync("gpg", ["--homedir", home.dir, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", ...a], {
        encoding: "utf8",
        stdio: ["pipe", "pipe", "ignore"],
      });
    gpg("--quick-gen-key", "Sub Test <sub@example.com>", "rsa2048", "sign,cert", "never");
    const fpr = gpg("--with-colons", "--list-keys")
      .split("\n")
      .find((l) => l.startsWith("fpr:"))!
      .split(":")[9];
    const file = join(dir, "sub.bin");
    writeFileSync(file, "subkey test");
    gpg("--armor", "--detach-sign", "--output", file + ".primary.asc", file);
    gpg("--quick-add-key", fpr, "rsa2048", "sign", "never");
    gpg("--armor", "--detach-sign", "--output", file + ".sub.asc", file); // gpg now picks the subkey
    const keys = await readPublicKeys(gpg("--armor", "--export", fpr));
    await expect(verifyFile(file, readFileSync(file + ".primary.asc", "utf8"), keys)).resolves.toBeTruthy();
    await expect(verifyFile(file, readFileSync(file + ".sub.asc", "utf8"), keys)).rejects.toThrow(/not in the trusted keyring/);
  });

  it("signs 512 MiB with flat memory (hash while the bytes pass)", async () => {
    const chunk = Buffer.alloc(1 << 20, 7);
    let left = 512;
    const source = new Readable({
      read() {
        this.push(left-- > 0 ? chunk : null);
      },
    });
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const sig = await signer.signStream("image-signing", source);
    clearInterval(timer);
    expect(sig).toContain("BEGIN PGP SIGNATURE");
    // openpgp.js' own streaming signer buffered the whole input (issue 2: 494 MB for 213 MB).
    expect(peak - before).toBeLessThan(64 << 20);
  });

  it("names the key and file when a key is missing or unreadable", async () => {
    const empty = mkdtempSync(join(tmpdir(), "si-nokeys-"));
    await expect(new LocalSigner(empty).signStream("image-signing", Readable.from(["x"]))).rejects.toThrow(
      /Cannot sign with image-signing: no key at .*image-signing\/private.asc/,
    );
    execFileSync("mkdir", ["-p", join(empty, "image-master")]);
    writeFileSync(join(empty, "image-master/private.asc"), "garbage");
    await expect(loadSigningKey(empty, "image-master")).rejects.toThrow(/Cannot read key .*image-master\/private.asc/);
  });
});
