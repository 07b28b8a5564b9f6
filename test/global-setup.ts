/**
 * Runs once before every test file:
 * - compiles the project (CLI tests run the compiled `bin/si.js`; incremental, so a no-op
 *   when dist/ is current);
 * - makes the five test signing keys (RSA 2048, fast) once per checkout, in
 *   test-artifacts/keys (git-ignored), so each suite copies keys instead of generating them.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

export const TEST_KEYS = resolve("test-artifacts/keys");

export default async function setup(): Promise<void> {
  // tsc emits even when it reports type errors; those fail test/typecheck.test.ts, not every suite.
  spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "ignore" });
  if (existsSync(resolve(TEST_KEYS, "blacklist/private.asc"))) return;
  const keys = (await import(pathToFileURL(resolve("dist/src/pgp/keys.js")).href)) as typeof import("../src/pgp/keys.js");
  const { KEY_NAMES } = (await import(pathToFileURL(resolve("dist/src/pgp/signer.js")).href)) as typeof import("../src/pgp/signer.js");
  await Promise.all(
    KEY_NAMES.map(async (name) => {
      const k = await keys.generateKey({ name: `[TESTING] ${keys.KEY_TITLES[name]}`, email: "system-image@example.com", bits: 2048 });
      await keys.storeKey(TEST_KEYS, name, k.privateArmored, k.publicArmored);
    }),
  );
}
