import { expect, it } from "vitest";
import { spawnSync } from "node:child_process";

it("the whole project typechecks under strict TypeScript", () => {
  const r = spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json", "--noEmit"], {
    encoding: "utf8",
  });
  expect(r.stdout + r.stderr).toBe("");
  expect(r.status).toBe(0);
});
