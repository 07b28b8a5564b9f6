/**
 * One device directory's index.json (server-reference §7.3). Every method returns a Promise;
 * mutations run as transactions on the shared queue, reads see every earlier queued call.
 * snake_case twins (`create_image`, ...) are the reference names for the admin shell.
 */
import { join } from "node:path";
import type { Config } from "../config/types.js";
import type { Image, IndexDoc } from "../model/index-doc.js";
import { cleanupPhased, parseIndex } from "../model/index-doc.js";
import { findImage, getPhasedPercentage } from "../model/images.js";
import { describePathProblem, publishedPathProblem } from "../model/published-path.js";
import { urlPathProblem } from "../model/naming.js";
import { textProblem } from "../model/version-detail.js";
import { TreeError } from "../errors.js";
import { expandPath } from "./paths.js";
import { readTextOrNull } from "./commit.js";
import { addSnakeAliases, Runner, type TreeOptions } from "./context.js";
import {
  opCreateImage,
  opExpireImages,
  opRemoveImage,
  opSetDescription,
  opSetPhasedPercentage,
  type CreateImageArgs,
  type KnownDigests,
} from "./image-ops.js";

/** Keyword arguments of create_image (Python: base=, bootme=, minversion=, version_detail=). */
export interface CreateImageOptions {
  base?: number | null;
  bootme?: boolean;
  minversion?: number | null;
  version_detail?: string | null;
  versionDetail?: string | null;
}

/** One image for createImages: create_image's arguments as an object. */
export interface ImageSpec extends CreateImageOptions {
  type: string;
  version: number;
  description: string;
  paths: string[];
}

const toArgs = (s: ImageSpec): CreateImageArgs => ({
  type: s.type,
  version: s.version,
  description: s.description,
  paths: s.paths,
  base: s.base,
  bootme: s.bootme,
  minversion: s.minversion,
  versionDetail: s.versionDetail ?? s.version_detail,
});

/**
 * What enters an index reaches devices (issue 13): every file's URL path is safe
 * (published-path.ts); version_detail and descriptions have no control characters and a
 * length cap. (The key=value grammar is enforced where items enter: generators, tag helpers.)
 */
function checkSpec(s: ImageSpec, pubPath: string, indexPath: string): void {
  const what = `Cannot create ${s.type} image ${String(s.version)} in ${indexPath}`;
  for (const p of Array.isArray(s.paths) ? s.paths : []) {
    if (typeof p !== "string" || p === "") continue; // fileEntries reports those
    const { url } = expandPath(p, pubPath);
    // urlPathProblem's cases keep the reference's message (fileEntries reports them).
    const bad = urlPathProblem(url) ? undefined : publishedPathProblem(url);
    if (bad) throw new TreeError(`${what}: file path ${describePathProblem(url, bad)}`, "ValueError");
  }
  checkText(what, "version_detail", s.versionDetail ?? s.version_detail);
  checkText(what, "description", s.description);
}

function checkText(what: string, key: string, text: unknown): void {
  const bad = typeof text === "string" ? textProblem(text) : undefined;
  if (bad) throw new TreeError(`${what}: ${key} ${bad.replace(/^it /, "")}`, "ValueError");
}

export class Device {
  readonly config: Config;
  /** publish_path: file paths given to create_image are relative to it (§7.5). */
  readonly pub_path: string;
  /** The device directory. */
  readonly path: string;
  readonly indexpath: string;
  private readonly runner: Runner;

  /** A device directory; `opts.queue` is the Tree's when the Tree made it (get_device). */
  constructor(config: Config, path: string, opts: TreeOptions = {}) {
    this.config = config;
    this.pub_path = config.publish_path;
    this.path = path;
    this.indexpath = join(path, "index.json");
    this.runner = new Runner(Runner.context(config, config.publish_path, opts), opts);
  }

  private read<T>(op: string, args: unknown[], fn: (doc: IndexDoc) => T): Promise<T> {
    return this.runner.run(op, args, async () => {
      const text = await readTextOrNull(this.indexpath);
      const doc = parseIndex(text ?? "", this.indexpath);
      cleanupPhased(doc); // every load applies it (§2.3)
      return fn(doc);
    });
  }

  /** The images, oldest version first (after the phased clean-up). */
  listImages(): Promise<Image[]> {
    return this.read("list_images", [], (doc) => doc.images);
  }

  /**
   * Adds an image whose files are `paths` (relative to publish_path or absolute inside it),
   * each with its `.asc`; `order` follows the list. Either a 5th argument with the keyword
   * options, or the reference's positional (base, bootme, minversion, version_detail).
   * Versions and bases are integers 1..65535 (the client asserts 16 bits).
   */
  createImage(
    type: string,
    version: number,
    description: string,
    paths: string[],
    baseOrOptions?: number | null | CreateImageOptions,
    bootme?: boolean,
    minversion?: number | null,
    versionDetail?: string | null,
  ): Promise<true> {
    const o: CreateImageOptions =
      typeof baseOrOptions === "object" && baseOrOptions !== null
        ? baseOrOptions
        : { base: baseOrOptions, bootme, minversion, versionDetail };
    const args = toArgs({ ...o, type, version, description, paths });
    return this.runner.txn("create_image", [type, version, description, paths, o], async (t) => {
      checkSpec({ ...o, type, version, description, paths }, this.pub_path, this.indexpath);
      await opCreateImage(t, this.indexpath, this.pub_path, args);
      return true as const;
    });
  }

  /**
   * Several images in one commit (an import's full image and its deltas appear together, or
   * none does). `opts.checksums` holds SHA-256 and size by real path for files the caller
   * just wrote, so gigabyte images are not read again. `opts.phasedPercentage`: the new
   * version's phased-percentage, set in the same commit (the images must be the newest).
   */
  createImages(images: ImageSpec[], opts: { checksums?: KnownDigests; phasedPercentage?: number } = {}): Promise<true> {
    return this.runner.txn("create_images", [images], async (t) => {
      for (const spec of images) checkSpec(spec, this.pub_path, this.indexpath);
      for (const spec of images) await opCreateImage(t, this.indexpath, this.pub_path, toArgs(spec), opts.checksums);
      // A staged rollout's first step (issue 17): in the same commit, so the new version is
      // never offered to every device first (set on all its images: full and deltas alike).
      if (opts.phasedPercentage !== undefined && opts.phasedPercentage !== 100 && images.length > 0)
        await opSetPhasedPercentage(t, this.indexpath, images[0].version, opts.phasedPercentage);
      return true as const;
    });
  }

  /** The single image of that type, version (and base, for deltas); IndexError otherwise. */
  getImage(type: string, version: number, base?: number | null): Promise<Image> {
    return this.read("get_image", [type, version, base], (doc) => doc.images[findImage(doc, type, version, base, this.indexpath)]);
  }

  /** Removes the image get_image would return. */
  removeImage(type: string, version: number, base?: number | null): Promise<true> {
    return this.runner.txn("remove_image", [type, version, base], async (t) => {
      await opRemoveImage(t, this.indexpath, type, version, base);
      return true as const;
    });
  }

  /** Sets `description` and one `description_<lang>` per translation. */
  setDescription(
    type: string,
    version: number,
    description: string,
    translations: Record<string, string> = {},
    base?: number | null,
  ): Promise<true> {
    return this.runner.txn("set_description", [type, version, description, translations, base], async (t) => {
      const what = `Cannot set the description of ${type} image ${String(version)} in ${this.indexpath}`;
      checkText(what, "description", description);
      if (typeof translations === "object" && translations !== null) {
        for (const [lang, text] of Object.entries(translations)) checkText(what, `description_${lang}`, text);
      }
      await opSetDescription(t, this.indexpath, { type, version, description, translations, base });
      return true as const;
    });
  }

  /** Keeps the newest `maxImages` full images and the deltas between kept versions. */
  expireImages(maxImages: number): Promise<true> {
    return this.runner.txn("expire_images", [maxImages], async (t) => {
      await opExpireImages(t, this.indexpath, maxImages);
      return true as const;
    });
  }

  /** The first image of that version's percentage, 100 when unset; IndexError if none. */
  getPhasedPercentage(version: number): Promise<number> {
    return this.read("get_phased_percentage", [version], (doc) => getPhasedPercentage(doc, version, this.indexpath));
  }

  /** Sets the percentage on every image of the latest version (100 removes it). */
  setPhasedPercentage(version: number, percentage: number): Promise<true> {
    return this.runner.txn("set_phased_percentage", [version, percentage], async (t) => {
      await opSetPhasedPercentage(t, this.indexpath, version, percentage);
      return true as const;
    });
  }

  // The reference (snake_case) names, same functions: put on the prototype by addSnakeAliases
  // below (so they are declared here, not defined).
  /** @see Device.listImages */ declare list_images: Device["listImages"];
  /** @see Device.createImage */ declare create_image: Device["createImage"];
  /** @see Device.createImages */ declare create_images: Device["createImages"];
  /** @see Device.getImage */ declare get_image: Device["getImage"];
  /** @see Device.removeImage */ declare remove_image: Device["removeImage"];
  /** @see Device.setDescription */ declare set_description: Device["setDescription"];
  /** @see Device.expireImages */ declare expire_images: Device["expireImages"];
  /** @see Device.getPhasedPercentage */ declare get_phased_percentage: Device["getPhasedPercentage"];
  /** @see Device.setPhasedPercentage */ declare set_phased_percentage: Device["setPhasedPercentage"];
}

export const DEVICE_METHODS = [
  "listImages",
  "createImage",
  "createImages",
  "getImage",
  "removeImage",
  "setDescription",
  "expireImages",
  "getPhasedPercentage",
  "setPhasedPercentage",
] as const;

addSnakeAliases(Device.prototype, DEVICE_METHODS);
