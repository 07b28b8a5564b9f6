/**
 * Byte-exact twin of Python's
 *   json.dumps(obj, sort_keys=True, indent=4, separators=(",", ": ")) + "\n"
 * which is how the reference server writes channels.json, index.json, sidecars and
 * keyring.json. The recovery greps keyring.json for lines starting with four spaces
 * (client-protocol §4.2), so the layout is a compatibility requirement, not a style.
 */

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue | undefined };

/** Compare two strings by Unicode code point, as Python sorts str (not by UTF-16 unit). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Only surrogates (0xD800-0xDFFF) sort differently from code points: they stand for
    // code points above 0xFFFF, so they must rank above every other BMP unit.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

const SHORT_ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: "\\\\",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x08: "\\b",
  0x0c: "\\f",
};

/** Python's ensure_ascii string encoder: everything outside ' '..'~' is escaped. */
export function pyString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) out += short;
    else if (c >= 0x20 && c <= 0x7e) out += s[i];
    // UTF-16 units are exactly the \uXXXX units Python emits (surrogate pairs included).
    else out += "\\u" + c.toString(16).padStart(4, "0");
  }
  return out + '"';
}

/** Python's float repr for a finite non-integer JS number (shortest round-trip digits). */
function pyFloat(n: number): string {
  if (!Number.isFinite(n)) {
    // Python writes these as bare words (not valid JSON either).
    return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
  }
  const [mant, expPart] = n.toExponential().split("e");
  const exp = Number(expPart);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  let body: string;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  } else if (exp < 0) {
    body = `0.${"0".repeat(-exp - 1)}${digits}`;
  } else if (digits.length > exp + 1) {
    body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  } else {
    body = `${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
  }
  return neg ? `-${body}` : body;
}

function pyNumber(n: number): string {
  // Integers are Python ints (plain digits). From 1e21 on, JSON text carries an exponent and
  // Python reads the value back as a float, so it is written as one.
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  return pyFloat(n);
}

function encode(value: JsonValue, level: number): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return pyNumber(value);
    case "bigint":
      return value.toString();
    case "string":
      return pyString(value);
  }
  const inner = "    ".repeat(level + 1);
  const outer = "    ".repeat(level);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const items = value.map((v) => inner + encode(v, level + 1));
    return `[\n${items.join(",\n")}\n${outer}]`;
  }
  if (typeof value === "object") {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort(compareCodePoints);
    if (keys.length === 0) return "{}";
    const items = keys.map((k) => `${inner}${pyString(k)}: ${encode(value[k] as JsonValue, level + 1)}`);
    return `{\n${items.join(",\n")}\n${outer}}`;
  }
  throw new TypeError(`Cannot encode ${typeof value} as JSON`);
}

/** The reference's document format: sorted keys, indent 4, ASCII only, trailing newline. */
export function dumpPyJson(value: JsonValue): string {
  return encode(value, 0) + "\n";
}
