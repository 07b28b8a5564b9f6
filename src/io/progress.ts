/**
 * A progress line for terminals: `ubports  123.4 MB / 500.0 MB  45.2 MB/s`, redrawn in place
 * on stderr at most ten times a second. Off when stderr is not a terminal (services and
 * pipes get one log line per step instead). Log lines clear it first, so both stay legible.
 */
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
      stream.write(`\r\x1b[K${label.slice(0, 30)} ${bar}${size}  ${(bytes / MB / secs).toFixed(1)} MB/s`);
      shown = true;
    },
    clear() {
      if (shown) stream.write("\r\x1b[K");
      shown = false;
    },
  };
}
