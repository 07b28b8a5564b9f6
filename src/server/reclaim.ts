/**
 * Gives memory back after a crowd of connections has gone (issue 14.2: workers that grew
 * under 8,000 stalled clients still held 1 GB 25 minutes after they left).
 *
 * Two things keep it otherwise: V8 runs no garbage collection in an idle process, so the
 * buffers and socket objects of closed connections stay allocated; and glibc keeps freed
 * small blocks for reuse instead of returning them (workers.ts starts workers with a fixed
 * mmap threshold, so blocks of a chunk's size and more go back to the kernel when freed).
 * When the open connections of this process fall to a quarter of a peak of at least
 * RECLAIM_PEAK, one full collection runs (a few tens of ms, at most every RECLAIM_GAP_MS).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

const RECLAIM_PEAK = 256;
const RECLAIM_DELAY_MS = 500;
const RECLAIM_GAP_MS = 5_000;

let open = 0;
let peak = 0;
let timer: NodeJS.Timeout | undefined;
let last = -Infinity;
type Gc = (options?: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;
let gc: Gc | undefined | null = null;

/** V8's collector, exposed at run time (the same as starting node with --expose-gc). */
function collect(): void {
  if (gc === null) {
    try {
      setFlagsFromString("--expose-gc");
      gc = runInNewContext("gc") as Gc;
    } catch {
      gc = undefined;
    }
  }
  // "last-resort": the collection that also hands V8's pooled pages back (a plain one
  // shrank the heap but not the RSS).
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
}

export function connectionOpened(): void {
  open++;
  if (open > peak) peak = open;
}

export function connectionClosed(): void {
  open--;
  if (peak < RECLAIM_PEAK || open > peak / 4) return;
  // After the last of a burst of closes: each one leaves garbage behind.
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    timer = undefined;
    if (performance.now() - last < RECLAIM_GAP_MS) return;
    last = performance.now();
    peak = open;
    collect();
  }, RECLAIM_DELAY_MS);
  timer.unref();
}
