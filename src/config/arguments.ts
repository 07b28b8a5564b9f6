/**
 * The options field of a `file_<name>` entry (server-reference §5.2): `key=value` items
 * separated by `,`. Each item is split on its FIRST `=` only, so values may contain `=`
 * (`v=1=1` gives `{v: "1=1"}`); items without `=` are dropped; a later key overrides an
 * earlier one. Nothing is trimmed: the reference does not trim either.
 */
export function unpackArguments(s: string): Record<string, string> {
  // Null prototype: an option named `__proto__` or `constructor` is just a key.
  const result: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const item of s.split(",")) {
    const eq = item.indexOf("=");
    if (eq < 0) continue;
    result[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return result;
}
