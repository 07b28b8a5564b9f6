/**
 * `si verify-tree --server URL`: a mirror or CDN checked as a device would see it (issue 16).
 *   1. the keyring chain, rooted in THIS instance's archive-master (trust.ts loadChain: the
 *      devices' preinstalled root, never the mirror's copy);
 *   2. channels.json, device keyrings and every index it names, with their signatures and
 *      shapes (remote-documents.ts: the local verifier's checks on a scratch copy);
 *   3. every listed file and its `.asc` by HEAD, the size from Content-Length; with `deep`
 *      each file streamed once through SHA-256 and its signature (remote-files.ts);
 *   4. freshness: the mirror's channels.json is the local one, or newer; older = behind by
 *      N seconds, an error (remote-lag.ts).
 * Problems name the URL. The scratch copy is removed afterwards.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import type { Config } from "../config/types.js";
import { readCaFile } from "../io/ca-file.js";
import { errorMessage } from "../errors.js";
import { checkChannels } from "./documents.js";
import { checkRemoteDocuments, MirrorCopy } from "./remote-documents.js";
import { checkRemoteFiles } from "./remote-files.js";
import { HttpRemoteSource, RemoteHttpError, type RemoteSource } from "./remote-http.js";
import { compareFreshness, parseGeneratedAt, type TreeTimes } from "./remote-lag.js";
import { Reporter } from "./report.js";
import { SignatureChecker } from "./signatures.js";
import { local } from "./tree-files.js";
import { loadChain, type KeyringCheck } from "./trust.js";

export interface RemoteReport {
  /** No errors (warnings allowed). */
  ok: boolean;
  /** Errors, one line each: `URL: message`. */
  problems: string[];
  /** Seconds the mirror's channels.json is behind the local one (0 = same or newer); null = unknown. */
  lagSeconds: number | null;
  /** Listed files found on the mirror (HEAD answered). */
  checkedFiles: number;
  /** Their bytes (Content-Length, or bytes downloaded with deep). */
  bytes: number;
  /** Warnings, `URL: message` (do not fail). */
  warnings: string[];
  /** What could not be checked because what vouches for it failed (already reported). */
  skipped: string[];
  url: string;
  deep: boolean;
}

export interface RemoteOptions {
  /** Base URL of the mirror (the tree's root). */
  url: string;
  config: Config;
  /** A PEM file with the CA (or self-signed certificate) to trust besides the system's. */
  ca?: string;
  /** Also download every file: sha256 and signature (streamed). */
  deep?: boolean;
  signal?: AbortSignal;
  /** Keyring expiry warnings (default 30 days), as local verify-tree. */
  warnDays?: number;
  now?: Date;
}

/** The local published tree's channels.json and index times (the reference for the lag). */
async function localTimes(publish: string): Promise<TreeTimes | null> {
  let channels: Buffer;
  try {
    channels = await readFile(join(publish, "channels.json"));
  } catch {
    return null;
  }
  const times = new Map<string, number | null>();
  const { doc } = checkChannels(channels.toString("utf8"));
  for (const [ch, e] of Object.entries(doc ?? {})) {
    for (const [dev, d] of Object.entries(e.devices)) {
      const file = local(publish, d.index);
      let at: number | null = null;
      if (file !== null) {
        try {
          at = parseGeneratedAt((JSON.parse(await readFile(file, "utf8")) as { global?: { generated_at?: unknown } }).global?.generated_at);
        } catch {
          // An unreadable local index: not comparable (local verify-tree reports it).
        }
      }
      times.set(`${ch}/${dev}`, at);
    }
  }
  return { channels, times };
}

/** verifyRemoteTree over any RemoteSource (tests may bring their own). */
export async function verifyRemoteSource(
  src: RemoteSource,
  config: Config,
  opts: Pick<RemoteOptions, "deep" | "signal" | "warnDays" | "now"> = {},
): Promise<RemoteReport> {
  const deep = opts.deep ?? false;
  const base = src.url("/");
  const scratch = await mkdtemp(join(tmpdir(), "si-verify-remote-"));
  const rep = new Reporter(scratch);
  const c: KeyringCheck = { rep, sigs: new SignatureChecker(rep), now: opts.now ?? new Date(), warnDays: opts.warnDays ?? 30 };
  const m = new MirrorCopy(src, scratch, c);
  const out: RemoteReport = {
    ok: false,
    problems: [],
    lagSeconds: null,
    checkedFiles: 0,
    bytes: 0,
    warnings: [],
    skipped: [],
    url: base,
    deep,
  };
  try {
    // One probe first: an unreachable or untrusted server is one problem, not fifty.
    try {
      await src.head("/channels.json");
    } catch (err) {
      opts.signal?.throwIfAborted();
      if (!(err instanceof RemoteHttpError) || err.status === undefined) {
        out.problems.push(`${src.url("/channels.json")}: ${err instanceof RemoteHttpError ? err.why : errorMessage(err)}`);
        return out;
      }
    }
    for (const name of ["archive-master", "image-master", "blacklist", "image-signing", "device-signing"]) {
      if (await m.fetch(`/gpg/${name}.tar.xz`)) await m.fetch(`/gpg/${name}.tar.xz.asc`);
    }
    const chain = await loadChain(c, scratch, config.gpg_keyring_path);
    const docs = await checkRemoteDocuments(c, m, chain);
    out.skipped.push(...docs.skipped);
    const files = await checkRemoteFiles(
      src,
      { error: (path, msg) => rep.error(m.at(path), msg), blacklist: chain.blacklist, signal: opts.signal },
      docs.refs,
      { deep },
    );
    out.checkedFiles = files.files;
    out.bytes = files.bytes;
    if (docs.channelsBytes) {
      const fresh = compareFreshness(await localTimes(config.publish_path), { channels: docs.channelsBytes, times: docs.times });
      out.lagSeconds = fresh.lagSeconds;
      for (const e of fresh.errors) rep.error(m.at("/channels.json"), e);
      for (const w of fresh.warnings) rep.warning(m.at("/channels.json"), w);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  // Aborted (a push's time bound): what was found so far is not a verdict.
  opts.signal?.throwIfAborted();
  // Problems were named in the scratch copy: name them by URL. A fetch that failed was
  // reported once; the "missing" the checks then found is the same problem.
  const url = (file: string) => (isAbsolute(file) ? file : src.url(`/${file}`));
  for (const p of rep.problems) {
    if (p.message.startsWith("missing") && m.failed.has(isAbsolute(p.file) ? p.file : join(scratch, p.file))) continue;
    (p.severity === "error" ? out.problems : out.warnings).push(`${url(p.file)}: ${p.message}`);
  }
  out.ok = out.problems.length === 0;
  return out;
}

export async function verifyRemoteTree(opts: RemoteOptions): Promise<RemoteReport> {
  const src = new HttpRemoteSource(opts.url, { ...(opts.ca ? { ca: readCaFile(opts.ca) } : {}), signal: opts.signal });
  try {
    return await verifyRemoteSource(src, opts.config, opts);
  } finally {
    await src.close();
  }
}

/** Human output: one line per problem, then a summary with files, bytes and lag. */
export function formatRemoteReport(r: RemoteReport): string[] {
  const lines = [...r.problems.map((p) => `error: ${p}`), ...r.warnings.map((w) => `warning: ${w}`)];
  for (const s of r.skipped) lines.push(`not checked: ${s}`);
  const lag = r.lagSeconds === null ? "lag unknown" : `lag ${r.lagSeconds} s`;
  const n = r.problems.length;
  lines.push(
    `${r.ok ? "OK" : "FAILED"}: ${n} error${n === 1 ? "" : "s"}, ${r.warnings.length} warning${r.warnings.length === 1 ? "" : "s"}; ` +
      `${r.checkedFiles} file${r.checkedFiles === 1 ? "" : "s"} (${r.bytes} bytes) checked${r.deep ? " with sha256 and signatures" : " by HEAD"} on ${r.url}; ${lag}`,
  );
  return lines;
}
