/** Positional and option arguments of a `file_*` entry (server-reference §5.2). */
import { unpackArguments } from "../config/arguments.js";
import { GeneratorError } from "../errors.js";

/** Throws unless `args` has the positional arguments `names` (§5.2: "Too few arguments"). */
export function requireArgs(args: string[], names: string[]): void {
  if (args.length < names.length) {
    throw new GeneratorError(
      `too few arguments: expected ${names.join(";")}, got ${args.length ? JSON.stringify(args.join(";")) : "none"}`,
    );
  }
  names.forEach((name, i) => {
    if (args[i].trim() === "") throw new GeneratorError(`argument ${i + 1} (${name}) is empty`);
  });
}

/** The options field at `index` (absent = no options). */
export function optionsAt(args: string[], index: number): Record<string, string> {
  return unpackArguments(args[index] ?? "");
}
