/**
 * Real GnuPG as the independent judge of our signatures: a throwaway home that holds only
 * the public keys a device would trust at that step of the chain. `--no-autostart`: public
 * keys and verification need no gpg-agent, and one agent per throwaway home piles up.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface GpgResult {
  ok: boolean;
  /** Fingerprint from VALIDSIG (the signing key), upper-case hex. */
  validSig?: string;
  /** Primary-key fingerprint from VALIDSIG's last field. */
  primary?: string;
  output: string;
}

export class GpgHome {
  readonly dir = mkdtempSync(join(tmpdir(), "si-gpg-"));

  importKey(file: string | Buffer): this {
    const input = typeof file === "string" ? readFileSync(file) : file;
    execFileSync("gpg", ["--homedir", this.dir, "--batch", "--no-autostart", "--quiet", "--import"], {
      input,
      stdio: ["pipe", "ignore", "ignore"],
    });
    return this;
  }

  verify(sigPath: string, dataPath: string): GpgResult {
    const r = spawnSync("gpg", ["--homedir", this.dir, "--batch", "--no-autostart", "--status-fd", "1", "--verify", sigPath, dataPath], {
      encoding: "utf8",
    });
    const line = r.stdout.split("\n").find((l) => l.startsWith("[GNUPG:] VALIDSIG"));
    const f = line?.split(" ");
    return { ok: r.status === 0 && !!line, validSig: f?.[2], primary: f?.[11], output: r.stdout + r.stderr };
  }
}
