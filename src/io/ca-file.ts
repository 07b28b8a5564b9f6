/**
 * The `--ca FILE` of `si verify-tree --server` and `si check-latest`: a PEM certificate that
 * HTTPS requests trust besides the system's roots (a mirror or test instance with a private CA).
 */
import { readFileSync } from "node:fs";
import { SiError, errorMessage } from "../errors.js";

/** The PEM text of `file`; refused, naming the file, when it is unreadable or holds no certificate. */
export function readCaFile(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (err) {
    throw new SiError(`Cannot read CA file '${file}': ${errorMessage(err)}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new SiError(`Cannot read CA file '${file}': no PEM certificate in it`);
  return pem;
}
