/**
 * The instance's salt for polling-client hashes (tally.ts clientHash): 32 random bytes in
 * `<state_path>/fleet-salt` (mode 0600), made once. Kept so that a client polling on two days,
 * or through two worker processes, hashes the same; secret so that the hashes in the state
 * database cannot be turned back into addresses by hashing every IPv4 address.
 */
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SiError } from "../errors.js";

const SALT_BYTES = 32;

export function fleetSalt(statePath: string): Buffer {
  const file = join(statePath, "fleet-salt");
  const read = () => {
    const salt = readFileSync(file);
    if (salt.length !== SALT_BYTES) throw new SiError(`Cannot use ${file}: expected ${SALT_BYTES} bytes, found ${salt.length}`);
    return salt;
  };
  try {
    return read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(statePath, { recursive: true });
  // Written whole under a temporary name, then linked: several workers starting at once all
  // end up reading the one salt that was linked first, never a half-written file.
  const tmp = join(statePath, `.fleet-salt.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  writeFileSync(tmp, randomBytes(SALT_BYTES), { mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    unlinkSync(tmp);
  }
  return read();
}
