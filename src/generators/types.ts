/**
 * What a generator gets (server-reference §5.1): the run-wide context (config, signer,
 * fetcher, codec, clock, the per-run HTTP version cache) and the per-image environment that
 * all generators of one image share and mutate.
 *
 * Contract: a generator returns the real path of a file inside publish_path; `null` only
 * for "nothing to offer" (version and keyring with no new files, which cancels the image
 * silently, as in the reference); every failure throws a GeneratorError, which the registry
 * prefixes with the generator name and the channel/device (the reference returned a silent
 * None: the importer records our message instead).
 */
import type { Config } from "../config/types.js";
import { httpFetcher, type FetchOptions, type Fetcher } from "../io/fetch.js";
import { defaultCodec, type XzCodec } from "../io/xz.js";
import { systemClock, type Clock } from "../model/generated-at.js";
import { LocalSigner } from "../pgp/local-signer.js";
import type { Signer } from "../pgp/signer.js";

/** SHA-256 and size of a file a generator wrote, so the importer need not re-read it. */
export interface FileDigest {
  sha256: string;
  size: number;
}

export interface GeneratorContext {
  config: Config;
  signer: Signer;
  fetcher: Fetcher;
  codec: XzCodec;
  clock: Clock;
  /**
   * The reference's process-wide CACHE (§5.3): `"http_" + url` → version (monitor value or
   * content hash). Lives for one run, shared by every channel and device.
   */
  cache: Map<string, string>;
  /** Checksums of files written in this run, by absolute path. */
  checksums: Map<string, FileDigest>;
  /** Progress lines ("I: ...", "W: ..."). */
  log: (line: string) => void;
  /**
   * Applied over each request's defaults (the reference's 5 s / 20 s socket timeouts):
   * lets tests and operators shorten timeouts, disable retries or cap sizes.
   */
  fetchOptions?: FetchOptions;
}

/** The per-image environment of §5.1; the two lists are shared by all generators of one image. */
export interface Environment {
  channel_name: string;
  device_name: string;
  /** `<publish_path>/<channel>/<device>` (the Device's path). */
  device: string;
  /** The version number being built. */
  version: number;
  /** Each successful generator appends its `key=value` item. */
  version_detail: string[];
  /** Absolute paths judged "new" so far in this image (the importer appends). */
  new_files: string[];
}

export type Generator = (ctx: GeneratorContext, args: string[], env: Environment) => Promise<string | null>;

/** A context with the real parts; anything given in `over` replaces the default. */
export function makeGeneratorContext(config: Config, over: Partial<GeneratorContext> = {}): GeneratorContext {
  return {
    config,
    signer: over.signer ?? new LocalSigner(config.gpg_key_path),
    fetcher: over.fetcher ?? httpFetcher,
    codec: over.codec ?? defaultCodec(),
    clock: over.clock ?? systemClock,
    cache: over.cache ?? new Map<string, string>(),
    checksums: over.checksums ?? new Map<string, FileDigest>(),
    log: over.log ?? (() => {}),
    fetchOptions: over.fetchOptions,
  };
}

/** Request options: the generator's defaults, then the context's overrides. */
export function fetchOpts(ctx: GeneratorContext, defaults: FetchOptions): FetchOptions {
  return { ...defaults, ...ctx.fetchOptions };
}
