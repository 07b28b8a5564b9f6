/**
 * Argument parsing shared by the admin commands (CLI and shell): integers the way argparse's
 * `type=int` takes them, and the lock timeout. Every refusal is a UsageError (exit 2).
 */
import { UsageError } from "../errors.js";

/** A decimal integer (optional sign), as Python's int() reads a command-line argument. */
export function parseIntArg(value: string, what: string): number {
  const s = value.trim();
  if (!/^[+-]?\d+$/.test(s)) throw new UsageError(`argument ${what}: invalid int value: '${value}'`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new UsageError(`argument ${what}: invalid int value: '${value}'`);
  return n;
}

/** commander option parser for an integer option. */
export const intOption = (what: string) => (value: string) => parseIntArg(value, what);

/** `--lock-timeout SECONDS` (decimal allowed) → milliseconds. */
export function parseLockTimeout(value: string): number {
  const s = value.trim();
  if (!/^\d+(\.\d+)?$/.test(s)) throw new UsageError(`argument --lock-timeout: expected a number of seconds >= 0, got '${value}'`);
  return Math.round(Number(s) * 1000);
}

/** commander counter for `-v -v ...`. */
export const countOption = (_v: string, n: number) => n + 1;

/** A phased percentage: an integer 0..100 (checked before anything is created). */
export function parsePercentage(value: string | number, what = "phased percentage"): number {
  const n = typeof value === "number" ? value : Number.NaN;
  if (typeof value === "string" && /^[+-]?\d+$/.test(value.trim())) return checkPercentage(Number(value.trim()), value, what);
  if (Number.isInteger(n)) return checkPercentage(n, String(value), what);
  throw new UsageError(`Invalid ${what}: ${String(value)} (it must be an integer from 0 to 100)`);
}

function checkPercentage(n: number, raw: string, what: string): number {
  if (n < 0 || n > 100) throw new UsageError(`Invalid ${what}: ${raw} (it must be an integer from 0 to 100)`);
  return n;
}
