/**
 * Counting access records against an attribution: downloads started/completed per image and
 * distinct polling clients per channel/device, each in a time bucket (an hour, a day, or the
 * whole input). Used by `si fleet report` over logs and by si serve's live counter alike, so
 * both count the same way.
 */
import { createHash } from "node:crypto";
import { downloadTargets, ownerKey, pollOwner, type Attribution, type ImageRef } from "./attribution.js";
import { canonicalUrlPath, clientOf, downloadOutcome, isPoll, type AccessRecord } from "./records.js";

export interface DownloadCount {
  bucket: string;
  image: ImageRef;
  started: number;
  completed: number;
}

/** A polling client: an opaque hash, never the address (see clientHash). */
export interface ClientSeen {
  bucket: string;
  channel: string;
  device: string;
  client: string;
}

/**
 * sha256(salt, address, User-Agent), 128 bits in hex: the same device seen again the same
 * way gets the same value, and the address cannot be recovered without the salt.
 */
export function clientHash(salt: Buffer, remote: string, userAgent: string): string {
  return createHash("sha256").update(salt).update(remote).update("\u0000").update(userAgent).digest("hex").slice(0, 32);
}

export interface TallyBuckets {
  /** Bucket of a download at `time` (ms). */
  downloads(time: number): string;
  /** Bucket of a poll at `time` (ms). */
  clients(time: number): string;
}

/** The whole input as one bucket (a report). */
export const WHOLE: TallyBuckets = { downloads: () => "", clients: () => "" };

const imageKey = (bucket: string, i: ImageRef) => [bucket, i.channel, i.device, i.version, i.kind, i.base ?? ""].join("\u0000");

export class Tally {
  readonly downloads = new Map<string, DownloadCount>();
  readonly clients = new Map<string, ClientSeen>();

  constructor(
    private readonly salt: Buffer,
    private readonly buckets: TallyBuckets = WHOLE,
  ) {}

  /** `path` already canonical (si serve's hook); else the record's target is canonicalised. */
  observe(rec: AccessRecord, attr: Attribution, path = canonicalUrlPath(rec.path)): void {
    if (path === undefined || rec.method !== "GET") return;
    const targets = attr.markers.has(path) ? downloadTargets(attr, path, clientOf(rec.userAgent)) : [];
    for (const t of targets) {
      const { started, completed } = downloadOutcome(rec, t.size);
      if (started || completed) this.addDownload(this.buckets.downloads(rec.time), t.image, started ? 1 : 0, completed ? 1 : 0);
    }
    if (targets.length > 0 || !isPoll(rec)) return;
    const owner = pollOwner(attr, path);
    if (!owner) return;
    const seen: ClientSeen = { bucket: this.buckets.clients(rec.time), ...owner, client: clientHash(this.salt, rec.remote, rec.userAgent) };
    this.clients.set([seen.bucket, ownerKey(owner.channel, owner.device), seen.client].join("\u0000"), seen);
  }

  addDownload(bucket: string, image: ImageRef, started: number, completed: number): void {
    const key = imageKey(bucket, image);
    const c = this.downloads.get(key);
    if (c) {
      c.started += started;
      c.completed += completed;
    } else this.downloads.set(key, { bucket, image, started, completed });
  }

  get empty(): boolean {
    return this.downloads.size === 0 && this.clients.size === 0;
  }
}
