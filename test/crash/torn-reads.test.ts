/**
 * Readers never see a torn tree (issue 9, SECURITY.md "How a change reaches devices"): while
 * import-images, copy-image and tag-image run in a loop, a reader fetches channels.json and
 * the index each device entry names, with their .asc, thousands of times, over HTTP from
 * `si serve` as devices do, in both orders (the client's parallel GETs can land either way:
 * client-protocol §2), and checks each pair with the client's rule and that every file the
 * index names is there. Like the client, a bad
 * channels.json signature is retried once, after fetching and verifying the image-signing
 * keyring again (client-protocol §3 step 4: what the real client does between the two
 * tries); an index is not retried, and an index that channels.json names must exist.
 * Mismatches on the first try are counted (SECURITY.md quotes the figure: the window left).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { setupCrashInstance } from "../../bench/crash.js";
import { startServer } from "../../src/server/start.js";
import { loadPublicKeyFile, readPublicKeys } from "../../src/pgp/keys.js";
import { newTally, PairReader, tallyLine } from "../helpers/pair-reader.js";

describe("a reader during imports and admin commands", () => {
  const tally = newTally();

  beforeAll(async () => {
    const inst = await setupCrashInstance({ files: 150 });
    const { config, must, bump } = inst;
    await must(["import-images"]);
    const keys = await readPublicKeys(await loadPublicKeyFile(config.gpg_key_path, "image-signing"));
    const master = await readPublicKeys(await loadPublicKeyFile(config.gpg_key_path, "image-master"));
    const server = await startServer(config, {
      address: "127.0.0.1",
      httpPort: 0,
      httpsPort: null,
      accessLog: false,
      logger: { log() {} },
    });
    let writing = true;
    const writer = (async () => {
      try {
        for (let round = 0; round < 4; round++) {
          bump();
          await must(["import-images"]);
          await must(["copy-image", "devel", "stable", "mako"]);
          const idx = JSON.parse(await readFile(join(config.publish_path, "stable/mako/index.json"), "utf8")) as {
            images: Array<{ version: number }>;
          };
          await must(["tag-image", "stable", "mako", String(Math.max(...idx.images.map((i) => i.version))), `r${round}`]);
        }
      } finally {
        writing = false;
      }
    })();
    const reader = new PairReader({ port: server.httpPort!, keys, master });
    while (writing) await reader.readOnce(tally);
    await writer;
    await server.close();
    reader.close();
    // The window that is left (SECURITY.md): first-try mismatches of channels.json.
    console.log(tallyLine("torn-reads", tally));
    await inst.farm.close();
  }, 600_000);

  it("never finds a file missing that an index names (files are committed before the index)", () => {
    expect(tally.pairs).toBeGreaterThan(1000);
    expect(tally.files).toBeGreaterThan(1000);
    expect(tally.missing).toEqual([]);
  });

  it("gets a channels.json pair that verifies, at the latest on the client's retry", () => {
    expect(tally.torn.filter((t) => t.startsWith("channels.json"))).toEqual([]);
  });

  // Before content-named index copies (src/tree/versioned-index.ts) this failed: 5 torn index
  // pairs of ~14000 with channels.json naming the index.json that every commit replaces.
  it("gets only index pairs that verify, in either read order, without a retry", () => {
    expect(tally.torn, `${tally.torn.length} torn of ${tally.pairs} pairs`).toEqual([]);
    expect(tally.named.size, "channels.json named several index copies over the run").toBeGreaterThan(3);
  });
});
