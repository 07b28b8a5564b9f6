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
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { setupCrashInstance } from "../../bench/crash.js";
import { loadPublicKeyFile, readPublicKeys, type PublicKeyInfo } from "../../src/pgp/keys.js";
import { verifyDetached } from "../../src/pgp/verify.js";
import { pairLocations } from "../../src/deploy/nginx-site.js";
import { startServer } from "../../src/server/start.js";
import { addMirrors, startNginxOver, startSshd } from "../helpers/mirror-servers.js";

interface Tally {
  /** channels.json pairs that failed on the first try (recovered by the client's retry). */
  firstTry: number;
  /** Index paths channels.json named, and the distinct channels.json documents seen. */
  named: Set<string>;
  channels: Set<string>;
  pairs: number;
  torn: string[];
  missing: string[];
  files: number;
}

let order = 0;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** GET `http://127.0.0.1:<port>/<rel>`: the body, or null on 404. */
function get(port: number, rel: string): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: `/${rel}`, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode === 404) return resolve(null);
        if (res.statusCode !== 200) return reject(new Error(`GET /${rel}: ${res.statusCode}`));
        resolve(Buffer.concat(chunks));
      });
    })
      .on("error", reject)
      .end();
  });
}

/** HEAD `rel`: is it served? */
function served(port: number, rel: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: `/${rel}`, method: "HEAD", agent }, (res) => {
      res.resume().on("end", () => resolve(res.statusCode === 200));
    })
      .on("error", reject)
      .end();
  });
}

/** One pair, the document first or the signature first, alternately. */
async function pairOk(port: number, rel: string, keys: PublicKeyInfo[]): Promise<{ ok: boolean; doc?: Buffer }> {
  const docFirst = order++ % 2 === 0;
  const ascFirst = docFirst ? undefined : await get(port, `${rel}.asc`);
  const doc = await get(port, rel);
  const asc = ascFirst ?? (await get(port, `${rel}.asc`));
  if (doc === null || asc === null) return { ok: doc === asc }; // both absent: nothing published yet
  try {
    await verifyDetached(doc, asc.toString("utf8"), keys, { what: rel });
    return { ok: true, doc };
  } catch {
    return { ok: false };
  }
}

/** What the client does before its retry (§3 step 4): gpg/image-signing.tar.xz + .asc again, checked with image-master. */
async function refetchImageSigning(port: number, master: PublicKeyInfo[]): Promise<void> {
  const rel = "gpg/image-signing.tar.xz";
  const [doc, asc] = [await get(port, rel), await get(port, `${rel}.asc`)];
  await verifyDetached(doc!, asc!.toString("utf8"), master, { what: rel });
}

async function readOnce(port: number, keys: PublicKeyInfo[], master: PublicKeyInfo[], t: Tally): Promise<void> {
  let ch = await pairOk(port, "channels.json", keys);
  t.pairs++;
  if (!ch.ok) {
    t.firstTry++;
    await refetchImageSigning(port, master);
    ch = await pairOk(port, "channels.json", keys); // the client's one retry
  }
  if (!ch.ok) {
    // What the mirror serves a moment later tells a rename gap (it heals) from a torn push (it stays).
    await new Promise((r) => setTimeout(r, 1000));
    const later = await pairOk(port, "channels.json", keys);
    return void t.torn.push(`channels.json (twice; ${later.ok ? "a pair that verifies 1 s later" : "still torn 1 s later"})`);
  }
  if (!ch.doc) return;
  t.channels.add(createHash("sha256").update(ch.doc).digest("hex"));
  const channels = JSON.parse(ch.doc.toString("utf8")) as Record<string, { devices?: Record<string, { index: string }> }>;
  for (const c of Object.values(channels)) {
    for (const d of Object.values(c.devices ?? {})) {
      const rel = d.index.replace(/^\//, "");
      t.named.add(rel);
      const idx = await pairOk(port, rel, keys);
      t.pairs++;
      if (!idx.ok) {
        t.torn.push(rel);
        continue;
      }
      if (!idx.doc) {
        t.missing.push(`${rel} (named by channels.json)`);
        continue;
      }
      const images = (JSON.parse(idx.doc.toString("utf8")) as { images: Array<{ files: Array<{ path: string; signature: string }> }> })
        .images;
      for (const f of images.at(-1)?.files ?? []) {
        for (const p of [f.path, f.signature]) {
          t.files++;
          if (!(await served(port, p.replace(/^\//, "")))) t.missing.push(`${p} (named by ${rel})`);
        }
      }
    }
  }
}

const newTally = (): Tally => ({ firstTry: 0, named: new Set(), channels: new Set(), pairs: 0, torn: [], missing: [], files: 0 });
const summary = (name: string, t: Tally) =>
  `${name}: ${t.firstTry} of ${t.pairs} pairs failed on the first try (channels.json), ${t.torn.length} after the retry` +
  `${t.torn.length ? ` (${t.torn.join("; ")})` : ""}; ${t.channels.size} channels.json versions seen`;

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
    const readBoth = async () => {
      await readOnce(nginx.port, keys, master, tallies.nginx);
      await readOnce(serve.httpPort!, keys, master, tallies.serve);
    };
    try {
      while (writing) await readBoth();
      await Promise.all([writer, pusher]);
      await readBoth();
    } finally {
      await Promise.allSettled([writer, pusher]);
      agent.destroy();
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
