/**
 * The interactive admin shell (server-reference §9.7): a node:repl whose context holds `pub`
 * (the Tree) and `conf` (the Config). The reference's commands work verbatim
 * (`pub.create_channel("test")`), camelCase too. A promise that an expression yields is
 * awaited and its value printed, as `await` would (so `pub.list_channels()` shows the
 * channels, not `Promise { <pending> }`). `pub.` completes with the operation names;
 * `.ops` (and `.help`) list them; history persists in `<state_path>/shell_history`.
 */
import repl, { type REPLServer } from "node:repl";
import { join } from "node:path";
import { inspect } from "node:util";
import type { Readable, Writable } from "node:stream";
import { failureLine, type ShellSession } from "./session.js";
import { opsHelp } from "./ops.js";
import { pythonHint } from "./python-hint.js";

export const BANNER = [
  "Welcome to the system-image shell.",
  "The configuration is available as: conf",
  "The system-image tree is available as: pub",
  "The admin commands (copy_image, tag_image, ...) are available as: admin",
  "Type .ops for the operations, .help for the shell commands, .exit (or Ctrl-D) to leave.",
].join("\n");

export interface ReplOptions {
  input?: Readable;
  output?: Writable;
  /** Default: whether output is a terminal. */
  terminal?: boolean;
  /** Default `<state_path>/shell_history`; null = no history file. */
  historyPath?: string | null;
  prompt?: string;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";

/**
 * A SyntaxError for a pasted line of the reference's Python shell gets the JavaScript form
 * appended (python-hint.ts). By name: the error comes from the REPL context's realm.
 */
function withPythonHint(err: Error, code: string): Error {
  // repl.Recoverable (also a SyntaxError) only means "more lines to come".
  const hint = err.name === "SyntaxError" && err.constructor.name !== "Recoverable" ? pythonHint(code) : undefined;
  if (!hint) return err;
  const original = err.message;
  err.message = `${original}\n${hint}`;
  if (typeof err.stack === "string") err.stack = err.stack.replace(`SyntaxError: ${original}`, `SyntaxError: ${err.message}`);
  return err;
}

/** Wraps the REPL's evaluator so that a promise result is awaited before it is printed. */
function awaitResults(server: REPLServer): void {
  const evaluate = server.eval;
  const wrapped: repl.REPLEval = function (this: REPLServer, code, context, file, cb) {
    evaluate.call(server, code, context, file, (err, result) => {
      if (err) return cb(withPythonHint(err, code), result);
      if (!isThenable(result)) return cb(err, result);
      Promise.resolve(result).then(
        (v) => cb(null, v),
        (e: unknown) => cb(e instanceof Error ? e : new Error(String(e)), undefined),
      );
    });
  };
  (server as { eval: repl.REPLEval }).eval = wrapped;
}

/** Runs the interactive shell until `.exit`/EOF; then finishes pending operations. */
export async function runRepl(session: ShellSession, opts: ReplOptions = {}): Promise<void> {
  const output = opts.output ?? process.stdout;
  const terminal = opts.terminal ?? Boolean((output as { isTTY?: boolean }).isTTY);
  output.write(BANNER + "\n");
  const server = repl.start({
    prompt: opts.prompt ?? "si> ",
    input: opts.input ?? process.stdin,
    output,
    terminal,
    useGlobal: false,
    ignoreUndefined: true,
    breakEvalOnSigint: true,
    // `pub` is a tracking Proxy: show the Tree, not the Proxy.
    writer: (v: unknown) => inspect(v, { colors: terminal, depth: 4, showProxy: false }),
  });
  server.context.pub = session.pub;
  server.context.conf = session.conf;
  server.context.admin = session.admin;
  awaitResults(server);

  server.defineCommand("ops", {
    help: "List the tree, device and admin operations",
    action() {
      this.clearBufferedCommand();
      this.output.write(opsHelp() + "\n");
      this.displayPrompt();
    },
  });
  server.defineCommand("help", {
    help: "Print the shell commands and the operations",
    action() {
      this.clearBufferedCommand();
      const names = Object.keys(this.commands).sort();
      const width = Math.max(...names.map((n) => n.length)) + 1;
      for (const n of names) this.output.write(`.${n.padEnd(width)}  ${this.commands[n]?.help ?? ""}\n`);
      this.output.write("\n" + opsHelp() + "\n");
      this.displayPrompt();
    },
  });

  const historyPath = opts.historyPath === undefined ? join(session.conf.state_path, "shell_history") : opts.historyPath;
  if (historyPath && terminal) {
    await new Promise<void>((resolve) =>
      server.setupHistory(historyPath, (err) => {
        if (err) output.write(`W: no shell history: ${err.message}\n`);
        resolve();
      }),
    );
  }

  const report = () => {
    for (const f of session.takeUnhandled()) output.write(`Error (not awaited) ${failureLine(f)}\n`);
  };
  // Failures of operations nobody awaited: shown when they happen, not at exit.
  const timer = setInterval(report, 250);
  timer.unref();

  await new Promise<void>((resolve) => server.once("exit", () => resolve()));
  clearInterval(timer);
  await session.settle();
  await new Promise((r) => setImmediate(r));
  report();
}
