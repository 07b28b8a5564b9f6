/**
 * Pool files have owners (issue 13 #3). The reference reuses any existing `pool/<name>` (§5.1
 * step 2): a remote upstream listing `/pool/img-7.tar.xz` could then hand its file to another
 * channel's `http` generator (`name=img`, monitor 7), which signs it as its own image.
 *
 * Every sidecar we write now carries an `origin` object: the generator kind, the fields that
 * identify its source (URL, name, version; upstream file URL, SHA-256 and keyring swap; source
 * checksum) and, for messages only, the channel/device that first made it. A file is reused
 * only when its origin has the same identity; otherwise the import stops with an error naming
 * both sources (an error rather than a second name: a squatted name is something the operator
 * must see, and the hashed names make an honest clash impossible).
 *
 * Sidecars written before (no `origin`, e.g. a tree made by the reference server) are judged
 * by their legacy fields (`generator`, `url`, `version`, `<stem>_checksum`), which every
 * reference sidecar of those generators has; a legacy sidecar that lacks them is refused.
 */
import { GeneratorError } from "../errors.js";
import type { JsonValue } from "../format/pyjson.js";
import { describeDetailProblem, detailItemProblem, versionDetailProblem } from "../model/version-detail.js";
import { exists, readSidecar } from "./pool.js";
import type { Environment, GeneratorContext } from "./types.js";

export type Origin = Record<string, string | boolean>;
type Sidecar = Record<string, JsonValue>;

export interface OwnerClaim {
  /** Written into the sidecar as `origin`: `generator`, `channel`, `device` and the source fields. */
  origin: Origin;
  /** The keys of `origin` that identify the source: all must be equal to reuse. */
  identity: string[];
  /** For a sidecar without `origin`: does it show the same source? */
  legacy(sidecar: Sidecar): boolean;
}

/** The owner record a claim writes, plus the generator/device context. */
export function makeOrigin(env: Environment, generator: string, source: Origin): Origin {
  return { generator, channel: env.channel_name, device: env.device_name, ...source };
}

export function originOf(sidecar: Sidecar | null): Origin | null {
  const o = sidecar?.origin;
  if (typeof o !== "object" || o === null || Array.isArray(o)) return null;
  const out: Origin = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === "string" || typeof v === "boolean") out[k] = v;
  return out;
}

/** `made by http from <url> for channel devel/mako`: who made a pool file, for error messages. */
export function describeOrigin(o: Origin | null, sidecar: Sidecar | null): string {
  if (!o) {
    if (!sidecar) return "made by an unknown source (it has no sidecar)";
    const from = typeof sidecar.url === "string" ? ` from ${sidecar.url}` : "";
    return `made by ${typeof sidecar.generator === "string" ? sidecar.generator : "an unknown generator"}${from} (a sidecar without an owner record)`;
  }
  const src = o.url ?? o.source ?? "";
  const up =
    o.generator === "remote-system-image" && o.upstream_channel
      ? ` (upstream ${String(o.upstream_channel)}/${String(o.upstream_device)})`
      : "";
  const ver = o.version !== undefined ? ` version ${String(o.version)}` : "";
  return `made by ${String(o.generator)}${src ? ` from ${String(src)}` : ""}${up}${ver}${o.channel ? ` for channel ${String(o.channel)}/${String(o.device)}` : ""}`;
}

/** Does the file at `path` belong to `claim`? Throws a GeneratorError naming both sources if not. */
export function checkOwner(path: string, sidecar: Sidecar | null, claim: OwnerClaim): void {
  const o = originOf(sidecar);
  const same = o ? claim.identity.every((k) => o[k] === claim.origin[k]) : sidecar !== null && claim.legacy(sidecar);
  if (same) return;
  throw new GeneratorError(
    `pool file ${path} belongs to another source: it was ${describeOrigin(o, sidecar)}, ` +
      `and this is ${describeOrigin(claim.origin, null).replace(/^made by /, "")}; it is not reused (remove it, or change the name= or path that clashes)`,
    "ValueError",
  );
}

/** The sidecar's version_detail checked against the grammar (naming the file and key). */
export function checkedDetail(path: string, detail: string, what = "the sidecar of"): string {
  const bad = versionDetailProblem(detail);
  if (bad) throw new GeneratorError(`${what} ${path}: ${describeDetailProblem(bad)}`, "ValueError");
  return detail;
}

/** `key=value` made by a generator, each part checked (naming where the value came from). */
export function checkedItem(where: string, key: string, value: string): string {
  const bad = detailItemProblem(key, value);
  if (bad) throw new GeneratorError(`the version_detail from ${where}: ${describeDetailProblem(bad)}`, "ValueError");
  return `${key}=${value}`;
}

/**
 * §5.1 step 2 with owners: when `path` exists and `claim` owns it, append the version_detail
 * of its sidecar (or `computed` when the sidecar has none) and report true; the caller
 * returns `path`. A file of another source is an error (checkOwner).
 */
export async function reuseOwned(
  ctx: GeneratorContext,
  env: Environment,
  path: string,
  computed: string,
  claim: OwnerClaim,
): Promise<boolean> {
  if (!exists(path)) return false;
  const sidecar = await readSidecar(path);
  checkOwner(path, sidecar, claim);
  const v = sidecar?.version_detail;
  env.version_detail.push(typeof v === "string" ? checkedDetail(path, v) : checkedDetail(path, computed, "the computed version_detail of"));
  ctx.log(`I: reusing ${path}`);
  return true;
}
