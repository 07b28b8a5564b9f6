/**
 * The client's signature rule (client-protocol §4.3), judged three ways on the same files:
 * plain `gpg --verify`, the device model (test/helpers/device-gpg.ts: gpg + VALIDSIG primary
 * fingerprint minus blacklist), and verify-tree's rule (src/pgp/verify.ts). A signing SUBKEY
 * makes gpg say "Good signature" while devices refuse it.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readPublicKeys } from "../../src/pgp/keys.js";
import { verifyDetached } from "../../src/pgp/verify.js";
import { clientVerify, gpgVerify, primaryFingerprints } from "../helpers/device-gpg.js";

const gpg = (home: string, ...args: string[]) =>
  execFileSync("gpg", ["--homedir", home, "--batch", "--passphrase", "", "--pinentry-mode", "loopback", ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });

describe("the primary-key rule", () => {
  it("refuses a good signature made by a signing subkey, and blacklisted primary keys", async () => {
    const home = mkdtempSync(join(tmpdir(), "si-subkey-"));
    gpg(home, "--quick-gen-key", "Signer <s@example.com>", "rsa2048", "sign", "never");
    const primary = gpg(home, "--with-colons", "--list-keys")
      .split("\n")
      .find((l) => l.startsWith("fpr:"))!
      .split(":")[9];
    gpg(home, "--quick-add-key", primary, "rsa2048", "sign", "never");
    const fprs = gpg(home, "--with-colons", "--list-keys")
      .split("\n")
      .filter((l) => l.startsWith("fpr:"))
      .map((l) => l.split(":")[9]);
    const subkey = fprs.find((f) => f !== primary)!;
    const keyring = Buffer.from(execFileSync("gpg", ["--homedir", home, "--batch", "--export"]));
    const data = join(home, "channels.json");
    writeFileSync(data, '{"devel": {"devices": {}}}\n');
    gpg(home, "--armor", "--local-user", `${primary}!`, "--output", `${data}.primary.asc`, "--detach-sign", data);
    gpg(home, "--armor", "--local-user", `${subkey}!`, "--output", `${data}.subkey.asc`, "--detach-sign", data);

    expect(primaryFingerprints([keyring])).toEqual(new Set([primary]));
    expect(gpgVerify(`${data}.subkey.asc`, data, [keyring]).ok).toBe(true);
    expect(clientVerify(`${data}.primary.asc`, data, [keyring])).toEqual({ ok: true, why: "" });
    expect(clientVerify(`${data}.subkey.asc`, data, [keyring]).ok).toBe(false);
    expect(clientVerify(`${data}.subkey.asc`, data, [keyring]).why).toMatch(/is not a primary key/);
    expect(clientVerify(`${data}.primary.asc`, data, [keyring], keyring)).toMatchObject({
      ok: false,
      why: expect.stringMatching(/blacklisted/) as string,
    });

    const keys = await readPublicKeys(keyring);
    const bytes = readFileSync(data);
    await expect(verifyDetached(bytes, readFileSync(`${data}.primary.asc`, "utf8"), keys)).resolves.toMatchObject({
      fingerprint: primary.toLowerCase(),
    });
    await expect(verifyDetached(bytes, readFileSync(`${data}.subkey.asc`, "utf8"), keys)).rejects.toThrow(/not in the trusted keyring/);
    await expect(verifyDetached(bytes, readFileSync(`${data}.primary.asc`, "utf8"), keys, { blacklist: [primary] })).rejects.toThrow(
      /blacklisted/,
    );
    execFileSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"]); // the agent key generation started
  });
});
