/**
 * The system-image client's PyCURL downloader (client-protocol §2), for the device model in
 * device-client.ts: a group of files is fetched with a HEAD on every URL, then a GET on every
 * URL; any status >= 400 fails the whole group (FileNotFoundError), redirects are followed (at
 * most 5), no Accept-Encoding is sent, and a file with an expected checksum is hashed while it
 * is written (mismatch: "HASH ERROR: <dest>"). One request at a time, so traces are ordered.
 */
import { createHash } from "node:crypto";
import { createWriteStream, rmSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";

export type ClientErrorKind =
  | "FileNotFoundError"
  | "SignatureError"
  | "KeyringError"
  | "DuplicateDestinationError"
  | "AssertionError"
  | "KeyError"
  | "ValueError"
  | "RecoveryError";

/** A failure of the modelled client (or recovery), named like the Python exception. */
export class ClientError extends Error {
  /** Requests made before the failure (set by runDeviceClient). */
  trace?: Trace[];
  constructor(
    readonly kind: ClientErrorKind,
    message: string,
  ) {
    super(`${kind}: ${message}`);
  }
}

export interface Download {
  url: string;
  dest: string;
  /** Expected sha256 (image files only). */
  checksum?: string;
}

export interface Trace {
  method: "HEAD" | "GET";
  url: string;
  status: number;
}

export class Downloader {
  readonly trace: Trace[] = [];

  constructor(
    private readonly userAgent: string,
    private readonly ca?: Buffer,
  ) {}

  private open(method: "HEAD" | "GET", url: string, hops = 0): Promise<IncomingMessage> {
    const u = new URL(url);
    const request = u.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        u,
        {
          method,
          agent: false,
          ca: u.protocol === "https:" ? this.ca : undefined,
          headers: { "user-agent": this.userAgent, accept: "*/*" },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          this.trace.push({ method, url, status });
          const location = res.headers.location;
          if (status >= 300 && status < 400 && location) {
            res.resume();
            if (hops >= 5) reject(new ClientError("FileNotFoundError", `Maximum (5) redirects followed: ${url}`));
            else this.open(method, new URL(location, u).href, hops + 1).then(resolve, reject);
            return;
          }
          if (status >= 400) {
            res.resume();
            reject(new ClientError("FileNotFoundError", `The requested URL returned error: ${status}: ${url}`));
            return;
          }
          resolve(res);
        },
      );
      req.on("error", (err) => reject(new ClientError("FileNotFoundError", `${err.message}: ${url}`)));
      req.end();
    });
  }

  /**
   * DownloadManagerBase.get_files: duplicate destinations must be identical records
   * (else DuplicateDestinationError); HEAD everything, then GET everything; all or nothing.
   */
  async getFiles(downloads: Download[]): Promise<void> {
    const unique = new Map<string, Download>();
    for (const d of downloads) {
      const prev = unique.get(d.dest);
      if (prev && (prev.url !== d.url || (prev.checksum ?? "") !== (d.checksum ?? ""))) {
        throw new ClientError("DuplicateDestinationError", `${d.dest} from ${prev.url} and ${d.url}`);
      }
      unique.set(d.dest, d);
    }
    const records = [...unique.values()];
    try {
      for (const r of records) (await this.open("HEAD", r.url)).resume();
      let mismatch: string | undefined;
      for (const r of records) {
        const res = await this.open("GET", r.url);
        const hash = createHash("sha256");
        const tap = new Transform({
          transform(chunk: Buffer, _enc, done) {
            hash.update(chunk);
            done(null, chunk);
          },
        });
        await pipeline(res, tap, createWriteStream(r.dest));
        if (r.checksum && hash.digest("hex") !== r.checksum) mismatch ??= r.dest;
      }
      if (mismatch) throw new ClientError("FileNotFoundError", `HASH ERROR: ${mismatch}`);
    } catch (err) {
      for (const r of records) rmSync(r.dest, { force: true });
      throw err;
    }
  }
}
