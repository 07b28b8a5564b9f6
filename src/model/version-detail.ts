/**
 * `version_detail` items (`key=value`, comma-joined; server-reference §0) and the tag helpers
 * of §8.4 used by tag-image, copy-image and import-images.
 */

/** Splits a version_detail string into its items (an empty string has none). */
export function splitVersionDetail(detail: string): string[] {
  return detail === "" ? [] : detail.split(",");
}

/**
 * Removes every `tag=` item, then appends `tag=<tag>` when `tag` is non-empty; an empty tag
 * clears the tags. Changes `list` in place (like the reference) and returns it.
 * Unlike the reference (§13 #10), adjacent `tag=` items are all removed.
 */
export function setTagOnVersionDetail(list: string[], tag: string | null | undefined): string[] {
  const kept = list.filter((item) => !item.startsWith("tag="));
  list.splice(0, list.length, ...kept);
  if (tag) list.push(`tag=${tag}`);
  return list;
}

/** The value of the first `tag=` item (text after its first `=`, up to a second `=`), or null. */
export function getTagsOnVersionDetail(list: readonly string[]): string | null {
  const item = list.find((i) => i.startsWith("tag="));
  // Python: item.split("=")[1] - a value containing "=" is cut there.
  return item === undefined ? null : item.split("=")[1]!;
}
