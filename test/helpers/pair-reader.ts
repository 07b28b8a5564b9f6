/**
 * A device-like reader of a served tree, for the torn-read tests (test/crash/torn-reads.test.ts
 * against si serve, test/mirror/consistency.test.ts against a mirror): fetches channels.json,
 * the index each device entry names and every file of the newest image, over HTTP, with the
 * client's rules (client-protocol §2, §3):
 *   - a pair is read document first or signature first, alternately (parallel GETs land either way);
 *   - a bad channels.json signature is retried once, after fetching and verifying the
 *     image-signing keyring again (§3 step 4); an index is never retried;
 *   - every file and signature an index names must answer 200 to HEAD.
 */
import { createHash } from "node:crypto";
import { Agent, request } from "node:http";
import type { PublicKeyInfo } from "../../src/pgp/keys.js";
import { verifyDetached } from "../../src/pgp/verify.js";

export interface Tally {
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

export const newTally = (): Tally => ({ firstTry: 0, named: new Set(), channels: new Set(), pairs: 0, torn: [], missing: [], files: 0 });

export const tallyLine = (name: string, t: Tally) =>
  `${name}: ${t.firstTry} of ${t.pairs} pairs failed on the first try (channels.json), ${t.torn.length} after the retry`;

export interface ReaderOptions {
  /** Port of the HTTP server on 127.0.0.1. */
  port: number;
  /** image-signing (documents) and image-master (the keyring re-fetched before a retry). */
  keys: PublicKeyInfo[];
  master: PublicKeyInfo[];
  /** A pair with only one side there counts as torn (a mirror); else as "not there yet". */
  oneSidedIsTorn?: boolean;
  /** After a failed retry, read again this much later and say whether it healed (a rename gap) or not (a torn push). */
  healCheckMs?: number;
}

export class PairReader {
  private order = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor(private readonly o: ReaderOptions) {}

  close(): void {
    this.agent.destroy();
  }

  /** GET `/<rel>`: the body, or null on 404. */
  get(rel: string): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      request({ host: "127.0.0.1", port: this.o.port, path: `/${rel}`, agent: this.agent }, (res) => {
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

  /** HEAD `/<rel>`: is it served? */
  served(rel: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      request({ host: "127.0.0.1", port: this.o.port, path: `/${rel}`, method: "HEAD", agent: this.agent }, (res) => {
        res.resume().on("end", () => resolve(res.statusCode === 200));
      })
        .on("error", reject)
        .end();
    });
  }

  /** One pair, the document first or the signature first, alternately. */
  async pair(rel: string): Promise<{ ok: boolean; doc?: Buffer }> {
    const docFirst = this.order++ % 2 === 0;
    const ascFirst = docFirst ? undefined : await this.get(`${rel}.asc`);
    const doc = await this.get(rel);
    const asc = ascFirst ?? (await this.get(`${rel}.asc`));
    // Both absent: nothing published yet (the caller checks what must exist).
    if (doc === null || asc === null) return { ok: this.o.oneSidedIsTorn ? doc === asc : true };
    try {
      await verifyDetached(doc, asc.toString("utf8"), this.o.keys, { what: rel });
      return { ok: true, doc };
    } catch {
      return { ok: false };
    }
  }

  /** What the client does before its retry (§3 step 4): gpg/image-signing.tar.xz + .asc again, checked with image-master. */
  private async refetchImageSigning(): Promise<void> {
    const rel = "gpg/image-signing.tar.xz";
    const [doc, asc] = [await this.get(rel), await this.get(`${rel}.asc`)];
    await verifyDetached(doc!, asc!.toString("utf8"), this.o.master, { what: rel });
  }

  /** One pass over the tree as a device polling it, into `t`. */
  async readOnce(t: Tally): Promise<void> {
    let ch = await this.pair("channels.json");
    t.pairs++;
    if (!ch.ok) {
      t.firstTry++;
      await this.refetchImageSigning();
      ch = await this.pair("channels.json"); // the client's one retry
    }
    if (!ch.ok) {
      if (this.o.healCheckMs === undefined) return void t.torn.push("channels.json (twice)");
      await new Promise((r) => setTimeout(r, this.o.healCheckMs));
      const later = await this.pair("channels.json");
      return void t.torn.push(`channels.json (twice; ${later.ok ? "a pair that verifies later" : "still torn later"})`);
    }
    if (!ch.doc) return;
    t.channels.add(createHash("sha256").update(ch.doc).digest("hex"));
    const channels = JSON.parse(ch.doc.toString("utf8")) as Record<string, { devices?: Record<string, { index: string }> }>;
    for (const c of Object.values(channels)) {
      for (const d of Object.values(c.devices ?? {})) {
        const rel = d.index.replace(/^\//, "");
        t.named.add(rel);
        const idx = await this.pair(rel);
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
            if (!(await this.served(p.replace(/^\//, "")))) t.missing.push(`${p} (named by ${rel})`);
          }
        }
      }
    }
  }
}
