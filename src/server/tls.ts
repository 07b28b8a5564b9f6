/**
 * TLS material for the HTTPS listener. Devices verify the server against the system CA store
 * and cannot be given another CA (client-protocol §1.1), so production needs a certificate
 * from a public CA; the self-signed one made here is for demos and tests.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rename, rm } from "node:fs/promises";
import { isIP } from "node:net";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { ConfigError, SiError, errorMessage } from "../errors.js";

const run = promisify(execFile);

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/**
 * Creates a self-signed certificate and its private key (mode 0600) with openssl when neither
 * file exists. Returns true when it created them, false when both were already there.
 * `hostnames` become the subjectAltName (IP addresses as IP entries); the first one is the CN.
 */
export async function ensureSelfSignedCertificate(certPath: string, keyPath: string, hostnames: string[]): Promise<boolean> {
  const haveCert = existsSync(certPath);
  const haveKey = existsSync(keyPath);
  if (haveCert && haveKey) return false;
  if (haveCert || haveKey) {
    // Never overwrite half of a pair: it may be a real certificate whose other half is elsewhere.
    const [has, lacks] = haveCert ? [certPath, keyPath] : [keyPath, certPath];
    throw new ConfigError(`Cannot create self-signed certificate: ${has} exists but ${lacks} does not`);
  }
  const names = hostnames.length > 0 ? hostnames : ["localhost"];
  const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
  await mkdir(dirname(certPath), { recursive: true });
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  // Write beside the targets and rename, so a crash never leaves a truncated pair behind.
  const tmpCert = `${certPath}.tmp-${process.pid}`;
  const tmpKey = `${keyPath}.tmp-${process.pid}`;
  try {
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "825",
      "-subj",
      `/CN=${names[0].slice(0, 64)}`,
      "-addext",
      `subjectAltName=${san}`,
      "-keyout",
      tmpKey,
      "-out",
      tmpCert,
    ]);
    await chmod(tmpKey, 0o600);
    await rename(tmpKey, keyPath);
    await rename(tmpCert, certPath);
  } catch (err) {
    await rm(tmpCert, { force: true });
    await rm(tmpKey, { force: true });
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new SiError(`Cannot create self-signed certificate ${certPath}: ${stderr || errorMessage(err)}`, "Exception", { cause: err });
  }
  return true;
}

/** Reads the PEM certificate (chain) and key named by tls_cert / tls_key. */
export async function readTlsMaterial(certPath: string, keyPath: string): Promise<TlsMaterial> {
  const read = async (path: string, what: string) => {
    try {
      return await readFile(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
      throw new ConfigError(`Cannot read TLS ${what} ${path} (tls_${what === "certificate" ? "cert" : "key"}): ${code}`, "Exception", {
        cause: err,
      });
    }
  };
  return { cert: await read(certPath, "certificate"), key: await read(keyPath, "key") };
}
