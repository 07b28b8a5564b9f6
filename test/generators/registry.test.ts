import { describe, expect, it } from "vitest";
import { GENERATOR_NAMES } from "../../src/config/load.js";
import { unpackArguments } from "../../src/config/arguments.js";
import { GENERATORS, generateFile } from "../../src/generators/index.js";
import { expectGenError, genInstance, makeEnv } from "./fixtures.js";

describe("unpack_arguments (test_unpack_arguments)", () => {
  it("splits on ',' then on the first '=' only, dropping items without '='", () => {
    expect(unpackArguments("a=1,b=2")).toEqual({ a: "1", b: "2" });
    expect(unpackArguments("a=1,b=2,c")).toEqual({ a: "1", b: "2" });
    expect(unpackArguments("a=1,b=2=1,c,v=1=1=1=1,d=c")).toEqual({ a: "1", b: "2=1", v: "1=1=1=1", d: "c" });
  });
});

describe("generate_file (test_generate_file)", () => {
  it("knows exactly the generator names the config accepts", () => {
    expect([...GENERATORS.keys()].sort()).toEqual([...GENERATOR_NAMES].sort());
  });

  it("refuses an unknown generator", async () => {
    const g = await genInstance();
    const err = await expectGenError(generateFile(g.ctx, "invalid", [], makeEnv(g)), "Invalid generator: invalid");
    expect(err.message).toBe("Invalid generator: invalid");
    // cdimage-device was removed in 2021 (§5.1).
    await expectGenError(generateFile(g.ctx, "cdimage-device", [], makeEnv(g)), "Invalid generator: cdimage-device");
  });

  it("names the generator, the channel/device and the missing arguments", async () => {
    const g = await genInstance();
    const env = makeEnv(g, { channel_name: "stable", device_name: "mako", new_files: ["x"] });
    const cases: Array<[string, string[], string]> = [
      ["http", [], "expected url, got none"],
      ["http-cdimage", [], "expected url"],
      ["keyring", [], "expected name"],
      ["cdimage-ubuntu", ["/x"], 'expected cdimage_path;series, got "/x"'],
      ["cdimage-custom", [], "expected cdimage_path;series"],
      ["cdimage-device-raw", [], "expected cdimage_path;series"],
      ["system-image", ["test"], "expected channel;prefix"],
      ["remote-system-image", ["http://x", "c"], "expected base_url;channel;prefix"],
    ];
    for (const [name, args, why] of cases) {
      await expectGenError(generateFile(g.ctx, name, args, env), `Cannot generate ${name} for stable/mako: too few arguments: ${why}`);
    }
    await expectGenError(generateFile(g.ctx, "http", [""], env), "argument 1 (url) is empty");
    expect(env.version_detail).toEqual([]);
  });
});
