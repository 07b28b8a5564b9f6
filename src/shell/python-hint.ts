/**
 * The reference server's admin shell was Python, and its documentation's snippets get pasted
 * into ours: `for keyring in ("a", "b"): pub.publish_keyring(keyring)` is a JavaScript
 * SyntaxError ("Unexpected identifier 'keyring'") that says nothing useful. When code that
 * failed to parse looks like Python, this says what the JavaScript form is (issue 15 item 6).
 * Only for code that did not parse: valid JavaScript is never second-guessed.
 */

/** `a` → `const a`; `a, b` or `(a, b)` → `const [a, b]` (tuple unpacking). */
function loopTarget(target: string): string | undefined {
  const names = target
    .replace(/^\((.*)\)$/, "$1")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0 || !names.every((n) => /^[A-Za-z_$][\w$]*$/.test(n))) return undefined;
  return names.length === 1 ? `const ${names[0]}` : `const [${names.join(", ")}]`;
}

/** Whether `s` is one parenthesised group: `("a", "b")`, not `(a)(b)` or `f(x)`. */
function isOneGroup(s: string): boolean {
  if (!s.startsWith("(") || !s.endsWith(")")) return false;
  let depth = 0;
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "(") depth++;
    else if (c === ")" && --depth === 0 && i < s.length - 1) return false;
  }
  return depth === 0;
}

/** Operations of the shell return promises: a statement calling one gets an `await`. */
const awaited = (expr: string) => (/^(pub|admin)\./.test(expr) ? `await ${expr}` : expr);

function iterable(src: string): string {
  const s = src.trim();
  if (isOneGroup(s)) return `[${s.slice(1, -1).trim().replace(/,$/, "")}]`;
  const range = /^range\((\s*\d+\s*)\)$/.exec(s);
  if (range) return `Array.from({ length: ${range[1].trim()} }, (_, i) => i)`;
  return awaited(s);
}

/** One Python statement as JavaScript (the literals and print that differ; calls awaited). */
function statement(src: string): string {
  const s = src
    .trim()
    .replace(/;+$/, "")
    .replace(/\bTrue\b/g, "true")
    .replace(/\bFalse\b/g, "false")
    .replace(/\bNone\b/g, "null")
    .replace(/^print\(/, "console.log(");
  return `${awaited(s)};`;
}

/** A `for ... in ...:` loop (one line, or a header with an indented body) as JavaScript. */
function forLoop(code: string): string | undefined {
  const lines = code
    .replace(/\r/g, "")
    .split("\n")
    .filter((l) => l.trim() !== "");
  const head = /^(\s*)for\s+(.+?)\s+in\s+(.+?)\s*:\s*(.*)$/.exec(lines[0] ?? "");
  if (!head) return undefined;
  const target = loopTarget(head[2]);
  if (!target) return undefined;
  const indent = head[1].length;
  const body = head[4] ? head[4].split(/;\s*/) : lines.slice(1).filter((l) => l.length - l.trimStart().length > indent);
  const statements = body
    .map((b) => b.trim())
    .filter(Boolean)
    .map(statement);
  const loop = `for (${target} of ${iterable(head[3])})`;
  if (statements.length === 0) return `${loop} { ... }`;
  return statements.length === 1 ? `${loop} ${statements[0]}` : `${loop} { ${statements.join(" ")} }`;
}

const PYTHON_BLOCK = /^\s*(def|class|if|elif|else|while|with|try|except|finally)\b[^{]*:\s*$/m;

/**
 * For code that failed to parse as JavaScript: a one-line hint when it looks like Python
 * (with the JavaScript form of a `for` loop), else undefined.
 */
export function pythonHint(code: string): string | undefined {
  const loop = forLoop(code);
  if (loop) return `the si shell runs JavaScript, not Python; write: ${loop}`;
  if (PYTHON_BLOCK.test(code) || /^\s*(import \w|from \w+ import )/m.test(code)) {
    return "the si shell runs JavaScript, not Python: blocks use { }, loops are `for (const x of [...]) ...`, and pub/admin operations are awaited";
  }
  return undefined;
}
