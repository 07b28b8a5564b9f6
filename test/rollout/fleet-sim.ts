/**
 * A fleet of simulated devices for the rollout tests: each has its own machine id and its
 * own source address (127.10.x.y: every address in 127/8 is the loopback), sends the
 * system-image client's User-Agent, fetches channels.json and the index it names over real
 * HTTP, and picks its upgrade with the client's own rules (src/verify/client-path.ts:
 * candidates, WeightedScorer, phased percentage). Signatures are checked once per step by
 * the caller with the real client check (gpg), not per device: 1,000 gpg runs per step
 * would take minutes. A device offered an image downloads every file of its path, as the
 * client does (client-protocol §3 step 9; what the fleet figures count).
 */
import { createHash } from "node:crypto";
import { request } from "node:http";
import type { ChannelsDoc } from "../../src/model/channels.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { choosePath, getCandidates, iterPath } from "../../src/verify/client-path.js";

export interface SimDevice {
  n: number;
  machineId: string;
  address: string;
  build: number;
}

export interface Reply {
  status: number;
  body: Buffer;
}

/** One GET over a fresh connection from `address`. */
export function get(port: number, path: string, headers: Record<string, string>, localAddress?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers, localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** `count` devices on `build`, machine ids as /etc/machine-id holds them (32 hex digits). */
export function makeFleet(count: number, build: number): SimDevice[] {
  return Array.from({ length: count }, (_, n) => ({
    n,
    machineId: createHash("md5").update(`rollout-sim-device-${n}`).digest("hex"),
    address: `127.10.${Math.floor(n / 250)}.${(n % 250) + 1}`,
    build,
  }));
}

export interface PollResult {
  /** The winning path's target version (null: up to date). */
  target: number | null;
  /** The files downloaded when offered an upgrade (URL paths). */
  downloaded?: string[];
}

/** One poll: channels.json, the index it names, the client's choice, the download. */
export async function poll(port: number, d: SimDevice, channel: string, device: string, download: boolean): Promise<PollResult> {
  const headers = { "User-Agent": `Ubuntu System Image Upgrade Client: device=${device};channel=${channel};build=${d.build}` };
  const channels = await get(port, "/channels.json", headers, d.address);
  if (channels.status !== 200) throw new Error(`device ${d.n}: channels.json answered ${channels.status}`);
  const doc = JSON.parse(channels.body.toString("utf8")) as ChannelsDoc;
  const indexPath = doc[channel].devices[device].index;
  const index = await get(port, indexPath, headers, d.address);
  if (index.status !== 200) throw new Error(`device ${d.n}: ${indexPath} answered ${index.status}`);
  const images = (JSON.parse(index.body.toString("utf8")) as IndexDoc).images;
  // A non-alias channel seeds the phase with channel_target, unset: "None" (client-protocol §6.3).
  const { winner } = choosePath(getCandidates(images, d.build), { channel: null, machineId: d.machineId });
  if (winner.length === 0) return { target: null };
  const last = winner[winner.length - 1];
  if (!download) return { target: last.version };
  const files = iterPath(winner).map(({ file }) => file.path);
  for (const file of files) {
    const r = await get(port, file, headers, d.address);
    if (r.status !== 200) throw new Error(`device ${d.n}: ${file} answered ${r.status}`);
  }
  return { target: last.version, downloaded: files };
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
