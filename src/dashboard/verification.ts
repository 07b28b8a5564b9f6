/**
 * The last tree verification (src/verify/verify-tree.ts), run after each scheduled import and
 * on demand from the dashboard. Kept in memory and in `<state_path>/tree-verification.json`
 * so a restarted server still shows it. One verification at a time: asking again while one
 * runs joins it.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/types.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../io/log.js";
import type { TreeReport } from "../verify/report.js";
import { verifyTree } from "../verify/verify-tree.js";

export interface StoredVerification {
  /** What asked for it: "schedule" (after an import), "dashboard". */
  trigger: string;
  started_at: string;
  duration_ms: number;
  /** Absent when the check itself could not run (then `error` says why). */
  report?: TreeReport;
  error?: string;
}

export const VERIFICATION_FILE = "tree-verification.json";

export class VerificationStore {
  private lastResult: StoredVerification | null = null;
  private current: { since: Date; trigger: string; done: Promise<StoredVerification> } | null = null;
  private readonly file: string;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly verify: typeof verifyTree = verifyTree,
  ) {
    this.file = join(config.state_path, VERIFICATION_FILE);
  }

  /** Reads the stored result of an earlier server run (a damaged file counts as none). */
  async load(): Promise<void> {
    try {
      this.lastResult = JSON.parse(await readFile(this.file, "utf8")) as StoredVerification;
    } catch {
      this.lastResult = null;
    }
  }

  last(): StoredVerification | null {
    return this.lastResult;
  }

  running(): { since: Date; trigger: string } | null {
    return this.current && { since: this.current.since, trigger: this.current.trigger };
  }

  /** Starts a verification (or joins the one running) and resolves with its result. */
  run(trigger: string): Promise<StoredVerification> {
    if (this.current) return this.current.done;
    const since = new Date();
    const done = this.execute(trigger, since).finally(() => {
      this.current = null;
    });
    this.current = { since, trigger, done };
    return done;
  }

  private async execute(trigger: string, since: Date): Promise<StoredVerification> {
    const log = this.log.child({ step: "verify-tree", trigger });
    log.info("tree verification started");
    const t0 = performance.now();
    let result: StoredVerification;
    try {
      const report = await this.verify(this.config);
      result = { trigger, started_at: since.toISOString(), duration_ms: Math.round(performance.now() - t0), report };
      const summary = `tree verification: ${report.ok ? "OK" : "FAILED"}, ${report.errors} error(s), ${report.warnings} warning(s)`;
      (report.ok ? log.info : log.error)(summary, { errors: report.errors, warnings: report.warnings, duration_ms: result.duration_ms });
    } catch (err) {
      result = { trigger, started_at: since.toISOString(), duration_ms: Math.round(performance.now() - t0), error: errorMessage(err) };
      log.error(`Cannot verify the tree: ${result.error}`, { duration_ms: result.duration_ms });
    }
    this.lastResult = result;
    try {
      const tmp = `${this.file}.tmp-${process.pid}`;
      await writeFile(tmp, JSON.stringify(result, null, 2) + "\n");
      await rename(tmp, this.file);
    } catch (err) {
      log.warn(`Cannot save the verification result to ${this.file}: ${errorMessage(err)}`);
    }
    return result;
  }
}
