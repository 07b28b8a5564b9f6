/**
 * A progress line for terminals: `ubports  123.4 MB / 500.0 MB  45.2 MB/s`, redrawn in place
 * on stderr at most ten times a second. Off when stderr is not a terminal (services and
 * pipes get one log line per step instead). Log lines clear it first, so both stay legible.
 */
import { statSync } from "node:fs";

export interface Progress {
  update(label: string, bytes: number, total?: number): void;
  /** Erases the line (call before printing a log line). */
  clear(): void;
}

const MB = 1e6;

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update() {}, clear() {} };
  let shown = false;
  let last = 0;
  const started = new Map<string, number>();
  return {
    update(label, bytes, total) {
      const now = performance.now();
      if (!started.has(label)) started.set(label, now);
      if (now - last < 100 && (!total || bytes < total)) return;
      last = now;
      const secs = Math.max((now - started.get(label)!) / 1000, 0.001);
      const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - 60));
      const frac = total ? Math.min(1, bytes / total) : 0;
      const bar = total ? `[${"#".repeat(Math.round(frac * width)).padEnd(width)}] ` : "";
      const size = total ? `${(bytes / MB).toFixed(1)} / ${(total / MB).toFixed(1)} MB` : `${(bytes / MB).toFixed(1)} MB`;
      // One terminal line (a wrapped line could not be redrawn by \r): the label gets what is left.
      const labelWidth = Math.max(12, (stream.columns ?? 80) - width - 42);
      stream.write(`\r\x1b[K${label.slice(0, labelWidth)} ${bar}${size}  ${(bytes / MB / secs).toFixed(1)} MB/s`);
      shown = true;
    },
    clear() {
      if (shown) stream.write("\r\x1b[K");
      shown = false;
    },
  };
}

/**
 * The process's progress line, when a command on a terminal wants one (`si import-images`
 * sets it: its log lines clear it). Long steps that are not downloads report here, e.g. the
 * delta generator (issue 15 item 6: ~11 s with no sign of life). None by default, so a
 * service, a scheduler child or a test never draws anything.
 */
let sink: Progress | undefined;

export function setProgressSink(progress: Progress | undefined): void {
  sink = progress;
}

/** A file being read: an fs.ReadStream (`bytesRead`, 'close'). */
interface ReadingStream {
  readonly bytesRead: number;
  once(event: "close", listener: () => void): unknown;
}

type ReadWatcher = (bytesRead: number) => void;
const watchers = new Map<string, Set<ReadWatcher>>();
const reading = new Map<string, Set<ReadingStream>>();

/**
 * Readers of image files call this with each stream they open on `path` (archive/diff/scan.ts),
 * so a watcher of that path can see how far they got. Costs a map lookup when nobody watches.
 */
export function trackFileRead(path: string, stream: ReadingStream): void {
  if (!watchers.has(path)) return;
  let open = reading.get(path);
  if (!open) reading.set(path, (open = new Set()));
  open.add(stream);
  stream.once("close", () => {
    open.delete(stream);
    if (open.size === 0 && reading.get(path) === open) reading.delete(path);
    for (const w of watchers.get(path) ?? []) w(stream.bytesRead);
  });
}

/**
 * Shows, on the progress sink if there is one, how much of `path` (its size now) the readers
 * tracked by trackFileRead have read: sampled ten times a second and when a reader closes. A
 * second pass over the file starts again from 0. Returns the function that stops and clears it.
 */
export function showFileReadProgress(path: string, label: string): () => void {
  const progress = sink;
  if (!progress) return () => {};
  let total: number;
  try {
    total = statSync(path).size;
  } catch {
    return () => {}; // the reader reports a missing file, with its own message
  }
  const watcher: ReadWatcher = (bytes) => progress.update(label, Math.min(bytes, total), total);
  let set = watchers.get(path);
  if (!set) watchers.set(path, (set = new Set()));
  set.add(watcher);
  const timer = setInterval(() => {
    const open = reading.get(path);
    if (open && open.size > 0) watcher(Math.max(...[...open].map((s) => s.bytesRead)));
  }, 100);
  timer.unref();
  return () => {
    clearInterval(timer);
    set.delete(watcher);
    if (set.size === 0 && watchers.get(path) === set) watchers.delete(path);
    progress.clear();
  };
}
