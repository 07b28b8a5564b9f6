/**
 * Non-interactive shell runs (`si shell -e CODE`, or code piped on stdin): the code runs as
 * one program, like `node -e` or `node < file`, with `pub`, `conf` and `admin` in scope and top-level
 * `await` allowed. The value of the program (its last expression, awaited if it is a
 * promise) is printed unless undefined; `pub.list_channels()` alone prints the channels.
 * (With top-level await, the value is printed when the code is a single expression.)
 *
 * Before returning, every operation the code started is finished, awaited or not. Each
 * failure is one line on stderr, and the exit status is 1 if there was any.
 */
import vm from "node:vm";
import { inspect } from "node:util";
import { failureLine, messageOf, type ShellSession } from "./session.js";
import { pythonHint } from "./python-hint.js";

export interface ScriptIO {
  out: (text: string) => void;
  err: (line: string) => void;
}

const FILENAME = "si-shell";

/** Globals a script may use besides pub and conf. */
function sandbox(session: ShellSession): vm.Context {
  const g = globalThis as Record<string, unknown>;
  const names = [
    "console",
    "process",
    "Buffer",
    "URL",
    "URLSearchParams",
    "TextEncoder",
    "TextDecoder",
    "fetch",
    "structuredClone",
    "setTimeout",
    "clearTimeout",
    "setInterval",
    "clearInterval",
    "setImmediate",
    "clearImmediate",
    "queueMicrotask",
  ];
  const ctx: Record<string, unknown> = { pub: session.pub, conf: session.conf, admin: session.admin };
  for (const n of names) ctx[n] = g[n];
  return vm.createContext(ctx, { name: "si shell" });
}

/** The script, compiled as plain code, or wrapped in an async function for top-level await. */
function compile(code: string): vm.Script {
  try {
    return new vm.Script(code, { filename: FILENAME });
  } catch (err) {
    if (!(err instanceof SyntaxError) || !/\bawait\b/.test(code)) throw err;
  }
  const expr = code.trim().replace(/;+\s*$/, "");
  try {
    return new vm.Script(`(async () => { return (\n${expr}\n); })()`, { filename: FILENAME, lineOffset: -1 });
  } catch {
    return new vm.Script(`(async () => {\n${code}\n})()`, { filename: FILENAME, lineOffset: -1 });
  }
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";

/** Runs `code`; resolves with the exit status (0 or 1) once every operation has finished. */
export async function runScript(session: ShellSession, code: string, io: ScriptIO): Promise<number> {
  let failed = false;
  const context = sandbox(session);
  try {
    let value: unknown = compile(code).runInContext(context, { displayErrors: false });
    if (isThenable(value)) value = await value;
    if (value !== undefined) io.out(inspect(value, { depth: 8, colors: false }) + "\n");
  } catch (err) {
    failed = true;
    // A pasted snippet of the reference's Python shell: say what the JavaScript is.
    const hint = err instanceof SyntaxError ? pythonHint(code) : undefined;
    io.err(`si: error: ${messageOf(err).split("\n")[0]}${hint ? `: ${hint}` : ""}`);
  }
  await session.settle();
  // Node reports unhandled rejections after the microtasks of a turn: give it one more turn.
  await new Promise((r) => setImmediate(r));
  for (const f of session.takeUnhandled()) {
    failed = true;
    io.err(`si: error: ${failureLine(f)}`);
  }
  return failed ? 1 : 0;
}
