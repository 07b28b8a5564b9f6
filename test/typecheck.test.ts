import { expect, it } from "vitest";
import { spawnSync } from "node:child_process";

// tsconfig.eslint.json is the build's settings over every TypeScript file, tests included
// (vitest itself strips types without checking them).
it("the whole project, tests included, typechecks under strict TypeScript", () => {
  const r = spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.eslint.json"], {
    encoding: "utf8",
  });
  expect(r.stdout + r.stderr).toBe("");
  expect(r.status).toBe(0);
}, 120_000);
