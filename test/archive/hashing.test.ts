import { createHash } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { HashingStream, hashStream } from "../../src/io/hashing.js";
import { tempDir } from "../helpers/tar-fixtures.js";

describe("HashingStream", () => {
  it("passes bytes through unchanged and knows their SHA-256 and count when done", async () => {
    const parts = [Buffer.from("hello "), Buffer.alloc(100_000, 1), Buffer.from("world")];
    const path = join(tempDir(), "out.bin");
    const h = new HashingStream();
    expect(h.finished).toBe(false);
    expect(() => h.sha256).toThrow(/has not finished/);
    await pipeline(Readable.from(parts), h, createWriteStream(path));
    const written = readFileSync(path);
    expect(written.equals(Buffer.concat(parts))).toBe(true);
    expect(h.sha256).toBe(createHash("sha256").update(written).digest("hex"));
    expect(h.bytes).toBe(written.length);
  });

  it("hashStream digests a whole stream; the empty stream has the well-known digest", async () => {
    expect(await hashStream(Readable.from([]))).toEqual({
      sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      bytes: 0,
    });
    expect((await hashStream(Readable.from([Buffer.from("abc")]))).sha256).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });
});
