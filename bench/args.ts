/**
 * The argument handling of the bench commands: `--name value` options and `--flag`s, with
 * `--help`/`-h` printing the usage and exiting before any work starts (issue 19: `npm run
 * bench -- --help` used to start a run), and unknown options refused (exit 2) rather than
 * silently ignored, so a typo cannot start a long run with the defaults.
 */

export interface BenchArgs {
  opt: (name: string, dflt: string) => string;
  num: (name: string, dflt: number) => number;
  flag: (name: string) => boolean;
}

/**
 * Parses `argv`; `options` and `flags` list every accepted name (with the leading `--`).
 * Prints `usage` and exits 0 on --help, prints the problem and the usage and exits 2 on a
 * bad command line.
 */
export function parseBenchArgs(argv: string[], usage: string, options: string[], flags: string[]): BenchArgs {
  const values = new Map<string, string>();
  const set = new Set<string>();
  const fail = (why: string): never => {
    process.stderr.write(`${why}\n\n${usage.trimEnd()}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") {
      process.stdout.write(`${usage.trimEnd()}\n`);
      process.exit(0);
    }
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (options.includes(name)) {
      const v = eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) fail(`${name} needs a value`);
      values.set(name, v);
    } else if (flags.includes(a)) set.add(a);
    else fail(`unknown argument: ${a}`);
  }
  return {
    opt: (name, dflt) => values.get(name) ?? dflt,
    num: (name, dflt) => {
      const v = values.get(name);
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) fail(`${name}: not a number: ${v}`);
      return n;
    },
    flag: (name) => set.has(name),
  };
}
