/**
 * What verify-tree finds: a list of problems, each naming one file (relative to the published
 * tree when inside it), plus counts of what was checked. Shared by the CLI and the dashboard.
 */
import { relative, sep } from "node:path";

export type Severity = "error" | "warning";

export interface Problem {
  severity: Severity;
  /** Path relative to the published tree (absolute when outside it, e.g. the trust root). */
  file: string;
  message: string;
}

export interface Checked {
  /** Detached signatures verified (every .asc of the tree). */
  signatures: number;
  /** Image files whose checksum and size were compared with an index. */
  files: number;
  indexes: number;
  keyrings: number;
}

export interface TreeReport {
  root: string;
  ok: boolean;
  errors: number;
  warnings: number;
  problems: Problem[];
  checked: Checked;
  /** When the check ran (keyring expiry is judged against it). */
  at: string;
  /** Parts not checked because what vouches for them failed (already reported). */
  skipped: string[];
}

/** Collects problems; files are given absolute and stored relative to the tree. */
export class Reporter {
  readonly problems: Problem[] = [];
  readonly checked: Checked = { signatures: 0, files: 0, indexes: 0, keyrings: 0 };
  private readonly seen = new Set<string>();

  constructor(readonly root: string) {}

  name(abs: string): string {
    const rel = relative(this.root, abs);
    return rel === "" || rel.startsWith("..") || rel.startsWith(sep) ? abs : rel.split(sep).join("/");
  }

  error(abs: string, message: string): void {
    this.add("error", abs, message);
  }

  warning(abs: string, message: string): void {
    this.add("warning", abs, message);
  }

  private add(severity: Severity, abs: string, message: string): void {
    const p = { severity, file: this.name(abs), message };
    const key = JSON.stringify(p);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.problems.push(p);
  }

  report(at: Date, skipped: string[] = []): TreeReport {
    const errors = this.problems.filter((p) => p.severity === "error").length;
    return {
      root: this.root,
      ok: errors === 0,
      errors,
      warnings: this.problems.length - errors,
      problems: [...this.problems],
      checked: { ...this.checked },
      at: at.toISOString(),
      skipped: [...skipped],
    };
  }
}

const plural = (n: number, word: string, many = `${word}s`) => `${n} ${n === 1 ? word : many}`;

/** Human output: one line per problem (`error: FILE: message`), then a summary line. */
export function formatReport(r: TreeReport): string[] {
  const lines = r.problems.map((p) => `${p.severity}: ${p.file}: ${p.message}`);
  for (const s of r.skipped) lines.push(`not checked: ${s}`);
  const c = r.checked;
  const what = `${plural(c.signatures, "signature")}, ${plural(c.files, "file")}, ${plural(c.indexes, "index", "indexes")}, ${plural(c.keyrings, "keyring")} checked in ${r.root}`;
  lines.push(`${r.ok ? "OK" : "FAILED"}: ${plural(r.errors, "error")}, ${plural(r.warnings, "warning")}; ${what}`);
  return lines;
}
