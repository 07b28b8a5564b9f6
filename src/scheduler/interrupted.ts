/**
 * A scheduled run that ends without the importer finishing its history row (the importer
 * threw after recording the start, or the server stopped mid-import) would show as "running"
 * until the next sweep (ImportHistory.sweepInterrupted) noticed its process is gone, and then
 * without the reason. This closes that row as failed at once, with the reason. (A run in a
 * child process is closed by child-runner.ts, which knows the child's pid.)
 */
import { ImportHistory } from "../state/history.js";

/** Marks this process's scheduled run started at or after `since` as failed, if still running. */
export function markInterrupted(statePath: string, since: Date, reason: string): void {
  let history: ImportHistory | undefined;
  try {
    history = ImportHistory.open(statePath);
    const run = history
      .listRuns(5)
      .find((r) => r.outcome === "running" && r.trigger === "schedule" && Date.parse(r.started_at) >= since.getTime());
    if (run) history.finishRun(run.id, "failed", reason);
  } catch {
    // Best effort: the history may be unwritable; the log line says what happened anyway.
  } finally {
    history?.close();
  }
}
