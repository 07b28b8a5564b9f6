/**
 * Errors as data. Every failure the operator can cause is one of these classes, with a message
 * that names the channel, device, file or config line. The CLI (src/cli/main.ts) and the HTTP
 * server map them to exit codes and status codes in one place each.
 *
 * `kind` keeps the reference server's exception type (KeyError, ValueError, ...) because its
 * test suite, which we port, asserts on it.
 */
export type PyKind = "KeyError" | "ValueError" | "TypeError" | "IndexError" | "Exception";

export class SiError extends Error {
  /** Process exit status the CLI uses for this error. */
  readonly exitCode: number = 1;
  readonly kind: PyKind;
  constructor(message: string, kind: PyKind = "Exception", options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = new.target.name;
  }
}

/** Bad command-line usage: exit status 2, like argparse in the reference tools. */
export class UsageError extends SiError {
  override readonly exitCode = 2;
}

/** A malformed or incomplete config file; the message carries file, line and key. */
export class ConfigError extends SiError {}

/** A missing, unreadable or malformed key, keyring or signature. */
export class KeyError_ extends SiError {}

/** A signature that does not verify, or a key that may not sign this object. */
export class SignatureError extends SiError {}

/** The published tree refused an operation (unknown channel, bad image, ...). */
export class TreeError extends SiError {}

/** A generator could not produce its file; the image of that device is cancelled. */
export class GeneratorError extends SiError {}

/** Malformed archive input (tar, xz, gzip, cpio, boot image). */
export class ArchiveError extends SiError {}

/** Another process holds the global lock. Not a failure: exit 0, like the reference. */
export class LockBusyError extends SiError {
  override readonly exitCode = 0;
}

/** Message of any thrown value, for logs and one-line CLI errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
