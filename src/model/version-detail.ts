/**
 * `version_detail` items (`key=value`, comma-joined; server-reference §0), the tag helpers of
 * §8.4 used by tag-image, copy-image and import-images, and the grammar every item must meet
 * before it can reach a device.
 *
 * Why a grammar: the string is written verbatim into the `channel.ini` of the version tarball
 * we sign (client-protocol §2: the device reads it as config.d/01_channel.ini), and devices
 * split it on `,` and `=` (D-Bus `Information()`). A newline injects `[service] base:` (a
 * redirect of the fleet), a comma injects `tag=EVIL`. Real items look like `ubports=20240101-12345`,
 * `tag=OTA-25`, `tag=2026-11-29/2`, `device=<sha256 hex>`, `keyring=archive-master`, `version=12`,
 * `raw-device=20160130`: keys are lower case, values printable ASCII without separators.
 */
import { TreeError } from "../errors.js";

/** `[a-z][a-z0-9_-]*`: what every generator and tag writes as a key. */
const KEY = /^[a-z][a-z0-9_-]*$/;
/** Printable ASCII (0x21-0x7e) without `, = [ ] \ ; #`, quotes or backquote. */
const VALUE = /^[!$%&()*+\-./0-9:<>?@A-Z^_a-z{|}~]+$/;
/** Longest version_detail string, description or translation (characters). */
export const MAX_TEXT = 1024;

/** Splits a version_detail string into its items (an empty string has none). */
export function splitVersionDetail(detail: string): string[] {
  return detail === "" ? [] : detail.split(",");
}

/** `"x"` with control characters visible (`\n`), for error messages. */
export const shown = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

/** Why `value` is not a legal version_detail value, or undefined. */
export function detailValueProblem(value: string): string | undefined {
  if (value === "") return "the value is empty";
  if (value.length > MAX_TEXT) return `the value is longer than ${MAX_TEXT} characters`;
  if (VALUE.test(value)) return undefined;
  const bad = [...value].find((c) => !VALUE.test(c))!;
  const what = /[\x00-\x1f\x7f]/.test(bad)
    ? "a control character"
    : /\s/.test(bad)
      ? "whitespace"
      : /[^\x00-\x7f]/.test(bad)
        ? "a non-ASCII character"
        : "a reserved character";
  return `the value has ${what} ${shown(bad)} (allowed: printable ASCII without , = [ ] \\ ; # quotes or whitespace)`;
}

export interface DetailProblem {
  /** The offending item, and its key when it has one. */
  item: string;
  key: string | null;
  reason: string;
}

/**
 * The first item of `detail` that breaks the grammar: `key=value`, key `[a-z][a-z0-9_-]*`,
 * value as detailValueProblem says. `allowBare`: an item without `=` is accepted when it is a
 * legal value (the reference's own tests publish `version_detail="abcdef"`; the tree API
 * keeps that working, the generators do not produce it).
 */
export function versionDetailProblem(detail: string, opts: { allowBare?: boolean } = {}): DetailProblem | undefined {
  if (detail.length > MAX_TEXT) return { item: detail, key: null, reason: `version_detail is longer than ${MAX_TEXT} characters` };
  for (const item of splitVersionDetail(detail)) {
    const eq = item.indexOf("=");
    if (eq === -1) {
      if (opts.allowBare && detailValueProblem(item) === undefined) continue;
      if (item === "") return { item, key: null, reason: "an empty item (',,' or a ',' at an end)" };
      return {
        item,
        key: null,
        reason: opts.allowBare
          ? `it is not key=value, and as a bare item ${detailValueProblem(item)!.replace(/^the value/, "it")}`
          : "it is not key=value",
      };
    }
    const key = item.slice(0, eq);
    if (!KEY.test(key)) return { item, key, reason: `the key ${shown(key)} is not [a-z][a-z0-9_-]*` };
    const bad = detailValueProblem(item.slice(eq + 1));
    if (bad) return { item, key, reason: bad };
  }
  return undefined;
}

/** The item `key=value` built from parts (a generator's name and version): each part checked alone, so a `,` in the value cannot pass as a second item. */
export function detailItemProblem(key: string, value: string): DetailProblem | undefined {
  const item = `${key}=${value}`;
  if (!KEY.test(key)) return { item, key, reason: `the key ${shown(key)} is not [a-z][a-z0-9_-]*` };
  const bad = detailValueProblem(value);
  return bad ? { item, key, reason: bad } : undefined;
}

/** One sentence for an error message: `item "x=a b" (key x): the value has whitespace " "`. */
export function describeDetailProblem(p: DetailProblem): string {
  return `version_detail item ${shown(p.item)}${p.key !== null ? ` (key ${shown(p.key)})` : ""}: ${p.reason}`;
}

/** Why a description or translation cannot be published (control characters, length), or undefined. */
export function textProblem(text: string, max = MAX_TEXT): string | undefined {
  if (text.length > max) return `it is longer than ${max} characters (${text.length})`;
  // C0, DEL, C1 and the Unicode line/paragraph separators: all break a line somewhere.
  const m = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/.exec(text);
  return m ? `it has the control character ${shown(m[0])} at offset ${m.index}` : undefined;
}

/**
 * Removes every `tag=` item, then appends `tag=<tag>` when `tag` is non-empty; an empty tag
 * clears the tags. Changes `list` in place (like the reference) and returns it.
 * Unlike the reference (§13 #10), adjacent `tag=` items are all removed, and a tag that is not
 * a legal value (a comma would inject a second item, a newline a channel.ini line) is refused.
 */
export function setTagOnVersionDetail(list: string[], tag: string | null | undefined): string[] {
  if (tag) {
    const bad = detailValueProblem(tag);
    if (bad) throw new TreeError(`Cannot set tag ${shown(tag)}: ${bad}`, "ValueError");
  }
  const kept = list.filter((item) => !item.startsWith("tag="));
  list.splice(0, list.length, ...kept);
  if (tag) list.push(`tag=${tag}`);
  return list;
}

/** The value of the first `tag=` item (text after its first `=`, up to a second `=`), or null. */
export function getTagsOnVersionDetail(list: readonly string[]): string | null {
  const item = list.find((i) => i.startsWith("tag="));
  // Python: item.split("=")[1] - a value containing "=" is cut there.
  return item === undefined ? null : item.split("=")[1];
}
