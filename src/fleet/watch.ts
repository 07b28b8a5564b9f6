/**
 * The attribution of the tree being served, kept current: rebuilt when channels.json changes
 * (inotify on publish_path: every commit rewrites channels.json, which names the content-named
 * index copy, src/tree/versioned-index.ts), and checked every few seconds in any case (a missed
 * event, an index rewritten in place by hand). Requests only read `current`: a Map lookup.
 */
import { watch, type FSWatcher } from "node:fs";
import { EMPTY_ATTRIBUTION, type Attribution } from "./attribution.js";
import { docsSignature, readAttribution } from "./tree-docs.js";

const CHECK_MS = 5_000;
/** An event's rebuild waits this long, so the burst of renames of one commit makes one rebuild. */
const SETTLE_MS = 50;

export class AttributionWatch {
  current: Attribution = EMPTY_ATTRIBUTION;
  private signature = "";
  private readonly timer: NodeJS.Timeout;
  private readonly watcher: FSWatcher | undefined;
  private pending: NodeJS.Timeout | undefined;

  constructor(
    private readonly publishPath: string,
    private readonly warn: (msg: string) => void = () => undefined,
  ) {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), CHECK_MS);
    this.timer.unref();
    try {
      // persistent: false — a watch must never keep a stopping server alive.
      this.watcher = watch(publishPath, { persistent: false }, (_e, name) => {
        if (name === "channels.json" && !this.pending) {
          this.pending = setTimeout(() => {
            this.pending = undefined;
            this.refresh();
          }, SETTLE_MS);
          this.pending.unref();
        }
      });
      this.watcher.on("error", () => this.watcher?.close());
    } catch {
      this.watcher = undefined; // no inotify (or no tree yet): the periodic check still runs
    }
  }

  /** Rebuilds the attribution if a document changed; never throws. */
  refresh(): void {
    try {
      const signature = docsSignature(this.publishPath, this.current);
      if (signature === this.signature) return;
      const next = readAttribution(this.publishPath);
      // The signature of the new owners' indexes, so the next check compares like with like;
      // none when a document changed while being read (the next check reads again).
      const changedMeanwhile = docsSignature(this.publishPath, this.current) !== signature;
      this.signature = changedMeanwhile ? "" : docsSignature(this.publishPath, next);
      this.current = next;
    } catch (err) {
      this.warn(`Cannot read the published tree for fleet counting: ${(err as Error).message}`);
    }
  }

  close(): void {
    clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    this.watcher?.close();
  }
}
