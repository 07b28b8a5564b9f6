import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dumpPyJson } from "../../src/format/pyjson.js";
import { generateFile } from "../../src/generators/index.js";
import { cleanupAll, expectGenError, genInstance, makeEnv, type GenInstance } from "./fixtures.js";

afterAll(cleanupAll);

const file = (path: string, order: number) => ({ checksum: "abcd", order, path, signature: `${path}.asc`, size: 1 });

/** channels.json and the indexes of a local tree (the generator only reads them). */
function writeTree(g: GenInstance, devices: Record<string, object[]>, channel = "test"): void {
  const root = g.config.publish_path;
  const entries: Record<string, { index: string }> = {};
  for (const [dev, images] of Object.entries(devices)) {
    entries[dev] = { index: `/${channel}/${dev}/index.json` };
    mkdirSync(join(root, channel, dev), { recursive: true });
    writeFileSync(join(root, channel, dev, "index.json"), dumpPyJson({ global: { generated_at: "x" }, images } as never));
  }
  writeFileSync(join(root, "channels.json"), dumpPyJson({ [channel]: { devices: entries } }));
}

describe("system-image generator (test_generate_file_system_image)", () => {
  let g: GenInstance;
  beforeEach(async () => {
    g = await genInstance();
  });

  it("fails on missing arguments, an unknown channel or device, an empty device and an unknown prefix", async () => {
    const env = makeEnv(g);
    await expectGenError(generateFile(g.ctx, "system-image", [], env), "too few arguments");
    await expectGenError(generateFile(g.ctx, "system-image", ["invalid", "file"], env), "channel 'invalid' is not in");
    writeTree(g, { other: [] });
    await expectGenError(generateFile(g.ctx, "system-image", ["test", "file"], env), "device 'test' is not in channel 'test'");
    writeTree(g, { test: [] });
    await expectGenError(generateFile(g.ctx, "system-image", ["test", "file"], env), "test/test has no full image");
    writeTree(g, { test: [{ type: "full", version: 1, description: "", files: [file("/file-1.tar.xz", 0)] }] });
    await expectGenError(
      generateFile(g.ctx, "system-image", ["test", "invalid"], env),
      "no file with prefix 'invalid' in test/test version 1",
    );
    expect(env.version_detail).toEqual([]);
  });

  it("returns the first file with exactly that prefix in the highest full image, with its sidecar's version_detail", async () => {
    writeTree(g, {
      test: [
        { type: "full", version: 1, description: "", files: [file("/file-1.tar.xz", 0)] },
        {
          type: "full",
          version: 3,
          description: "",
          files: [file("/pool/file-rootfs-3.tar.xz", 0), file("/file-3.tar.xz", 1), file("/file-9.tar.xz", 2)],
        },
        { type: "full", version: 2, description: "", files: [file("/file-2.tar.xz", 0)] },
        { type: "delta", version: 4, base: 3, description: "", files: [file("/file-4.tar.xz", 0)] },
      ],
    });
    const env = makeEnv(g);
    const root = realpathSync(g.config.publish_path);
    expect(await generateFile(g.ctx, "system-image", ["test", "file"], env)).toBe(join(root, "file-3.tar.xz"));
    expect(env.version_detail).toEqual([]); // no sidecar
    writeFileSync(join(root, "file-3.json"), dumpPyJson({ version_detail: "file=abcd" }));
    expect(await generateFile(g.ctx, "system-image", ["test", "file"], env)).toBe(join(root, "file-3.tar.xz"));
    expect(env.version_detail).toEqual(["file=abcd"]);
    expect(await generateFile(g.ctx, "system-image", ["test", "file-rootfs"], env)).toBe(join(root, "pool/file-rootfs-3.tar.xz"));
  });

  it("refuses a sidecar version_detail that breaks the grammar, and an unsafe path, naming the file and key", async () => {
    writeTree(g, {
      test: [{ type: "full", version: 1, description: "", files: [file("/pool/file-1.tar.xz", 0)] }],
      bad: [{ type: "full", version: 2, description: "", files: [file("/pool/.hidden/file-2.tar.xz", 0)] }],
    });
    const root = realpathSync(g.config.publish_path);
    mkdirSync(join(root, "pool"));
    writeFileSync(join(root, "pool/file-1.json"), dumpPyJson({ version_detail: "file=1\n[service]\nbase: evil.example.com" }));
    const env = makeEnv(g);
    await expectGenError(
      generateFile(g.ctx, "system-image", ["test", "file"], env),
      `the sidecar of ${join(root, "pool/file-1.tar.xz")}: version_detail item "file=1\\n[service]\\nbase: evil.example.com" (key "file"): the value has a control character "\\n"`,
    );
    await expectGenError(
      generateFile(g.ctx, "system-image", ["test", "file", "device=bad"], env),
      'refusing file path "/pool/.hidden/file-2.tar.xz" of test/bad version 2',
      'the component ".hidden" starts with a dot',
    );
    expect(env.version_detail).toEqual([]);
  });

  it("reads another device with device= (test_generate_file_system_image_different_device)", async () => {
    writeTree(g, {
      test: [],
      source: [{ type: "full", version: 1, description: "", files: [file("/file-1.tar.xz", 0)] }],
      empty: [],
    });
    const root = realpathSync(g.config.publish_path);
    writeFileSync(join(root, "file-1.json"), dumpPyJson({ version_detail: "file=abcd" }));
    const env = makeEnv(g);
    await expectGenError(
      generateFile(g.ctx, "system-image", ["test", "file", "device=invalid"], env),
      "device 'invalid' is not in channel 'test'",
    );
    await expectGenError(generateFile(g.ctx, "system-image", ["test", "file", "device=empty"], env), "test/empty has no full image");
    expect(await generateFile(g.ctx, "system-image", ["test", "file", "device=source"], env)).toBe(join(root, "file-1.tar.xz"));
    expect(env.version_detail).toEqual(["file=abcd"]);
  });
});
