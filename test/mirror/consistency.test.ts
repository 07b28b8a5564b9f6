/**
 * A mirror never shows a device a torn tree (issue 16 "Consistency under concurrency"): while
 * the primary runs import-images, copy-image and tag-image in a loop and `si mirror push` runs
 * again and again to an rsync mirror (a real sshd and nginx started here), a reader on the
 * MIRROR's nginx fetches channels.json, the index each device entry names and every file the
 * newest image lists, with their .asc, over and over, as devices do (both orders of a pair:
 * client-protocol §2). The strictness of the local test (test/crash/torn-reads.test.ts):
 *   - a channels.json pair may fail once, then the client re-fetches and verifies the
 *     image-signing keyring and retries once (client-protocol §3 step 4); the retry must verify;
 *   - an index pair must verify at once (content-named copies never change), and an index that
 *     channels.json names must be there;
 *   - every file and signature an index names must answer 200 to HEAD.
 * The mirror directory is read both through nginx with the shipped site's channels.json
 * locations (served through the pair directory the push switches with one rename:
 * src/mirror/pair-dir.ts) and through `si serve` over it (which holds a request while the pair
 * is between its renames: src/server/pair-settle.ts); everything above is asserted for both.
 * Run: `npx vitest run test/mirror/consistency.test.ts` (needs sshd, rsync, nginx, xz, tar).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { setupCrashInstance } from "../../bench/crash.js";
import { loadPublicKeyFile, readPublicKeys } from "../../src/pgp/keys.js";
import { pairLocations } from "../../src/deploy/nginx-site.js";
import { startServer } from "../../src/server/start.js";
import { addMirrors, startNginxOver, startSshd } from "../helpers/mirror-servers.js";
import { newTally, PairReader, tallyLine, type Tally } from "../helpers/pair-reader.js";

const summary = (name: string, t: Tally) =>
  `${tallyLine(name, t)}${t.torn.length ? ` (${t.torn.join("; ")})` : ""}; ${t.channels.size} channels.json versions seen`;

describe("readers on an rsync mirror (its nginx, and si serve over it) while the primary changes and pushes", () => {
  // The same mirror directory read two ways, alternately: by a plain nginx, and by `si serve`,
  // which holds a request for channels.json while its .asc lags it (src/server/pair-settle.ts).
  const tallies = { nginx: newTally(), serve: newTally() };
  let pushes = 0;

  beforeAll(async () => {
    const inst = await setupCrashInstance({ files: 150 });
    const { config, configPath, must, bump } = inst;
    const scratch = mkdtempSync(join(tmpdir(), "si-mirror-consistency-"));
    const mirror = join(scratch, "mirror-www");
    mkdirSync(mirror);
    const sshd = await startSshd(join(scratch, "sshd"));
    // The shipped site's channels.json locations and its refusal of hidden paths.
    const nginx = await startNginxOver(mirror, {
      workDir: join(scratch, "nginx"),
      serverExtra: [...pairLocations(), "    location ~ /\\. { return 404; }"].join("\n"),
    });
    const serve = await startServer(
      { ...config, publish_path: mirror },
      { address: "127.0.0.1", httpPort: 0, httpsPort: null, accessLog: false, logger: { log() {} } },
    );
    await must(["import-images"]);
    await must(["copy-image", "devel", "stable", "mako"]);
    addMirrors(configPath, {
      m: {
        type: "rsync",
        target: `${sshd.user}@127.0.0.1:${mirror}`,
        ssh_key: sshd.clientKey,
        ssh_port: sshd.port,
        ssh_known_hosts: sshd.knownHostsFile,
        url: nginx.url,
      },
    });
    await must(["mirror", "push"]);
    const keys = await readPublicKeys(await loadPublicKeyFile(config.gpg_key_path, "image-signing"));
    const master = await readPublicKeys(await loadPublicKeyFile(config.gpg_key_path, "image-master"));

    let writing = true;
    const writer = (async () => {
      try {
        for (let round = 0; round < 4; round++) {
          bump();
          await must(["import-images"]); // pushes to the mirror itself once its lock is released
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
    // Pushes by hand, back to back, overlapping the imports' own pushes.
    const pusher = (async () => {
      while (writing) {
        await must(["mirror", "push", "m"]);
        pushes++;
      }
      await must(["mirror", "push", "m"]); // the last state, after the last change
    })();
    // A pair missing one side is torn on a mirror; a failure is read again 1 s later (a rename gap heals, a torn push stays).
    const readers = {
      nginx: new PairReader({ port: nginx.port, keys, master, oneSidedIsTorn: true, healCheckMs: 1000 }),
      serve: new PairReader({ port: serve.httpPort!, keys, master, oneSidedIsTorn: true, healCheckMs: 1000 }),
    };
    const readBoth = async () => {
      await readers.nginx.readOnce(tallies.nginx);
      await readers.serve.readOnce(tallies.serve);
    };
    try {
      while (writing) await readBoth();
      await Promise.all([writer, pusher]);
      await readBoth();
    } finally {
      await Promise.allSettled([writer, pusher]);
      readers.nginx.close();
      readers.serve.close();
      await serve.close();
      await nginx.stop();
      await sshd.stop();
      await inst.farm.close();
      rmSync(scratch, { recursive: true, force: true });
      rmSync(inst.work, { recursive: true, force: true });
    }
    // The window left on a plain web server (README "Scaling out" quotes it).
    console.log(
      `mirror consistency, ${pushes} pushes by hand:\n  ${summary("nginx", tallies.nginx)}\n  ${summary("si serve", tallies.serve)}`,
    );
  }, 900_000);

  it("reads the mirror throughout, both ways, and sees it change many times", () => {
    expect(pushes).toBeGreaterThan(2);
    for (const t of Object.values(tallies)) {
      expect(t.pairs).toBeGreaterThan(300);
      expect(t.files).toBeGreaterThan(300);
      // Four rounds of import + copy + tag: each changes channels.json; the reader saw most of them.
      expect(t.channels.size, "distinct channels.json documents read from the mirror").toBeGreaterThan(4);
      expect(t.named.size, "index copies channels.json named over the run").toBeGreaterThan(3);
    }
  });

  it("never finds a file or index missing that a document names (phases: files, indexes, channels.json)", () => {
    expect(tallies.nginx.missing).toEqual([]);
    expect(tallies.serve.missing).toEqual([]);
  });

  it("gets only index pairs that verify, in either read order, without a retry", () => {
    for (const t of Object.values(tallies)) expect(t.torn.filter((x) => !x.startsWith("channels.json"))).toEqual([]);
  });

  // Plain files alone would fail here now and then: the two renames of the channels.json pair
  // on the mirror's disk leave a gap a quick retry can land in again (1 pair of 189,385 failed
  // twice under load 17 on 2 cores before the pair directory).
  it("gets a channels.json pair that verifies, at the latest on the client's retry, from nginx and from si serve", () => {
    expect(tallies.nginx.torn).toEqual([]);
    expect(tallies.serve.torn).toEqual([]);
  });
});
