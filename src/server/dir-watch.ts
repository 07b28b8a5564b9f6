/**
 * Change hints for the in-memory copies of small files (static-files.ts): one inotify watch
 * (fs.watch) per directory holding a cached file, so that a publish renaming a new
 * channels.json or .asc into place drops the old copy within an event-loop turn instead of
 * at the next periodic re-check.
 *
 * Hints only: a watch may be impossible (inotify limit reached, a file system without
 * inotify) or blind (the watched directory itself was renamed away and replaced, so events
 * now happen in another inode). The periodic re-check bounds staleness in those cases;
 * the cache never relies on a watch alone.
 */
import { watch, type FSWatcher } from "node:fs";

interface Watched {
  /** undefined: the watch could not be set up (or failed); files rely on the re-check. */
  watcher: FSWatcher | undefined;
  /** Cached files in this directory. */
  files: number;
}

export class DirWatches {
  private readonly dirs = new Map<string, Watched>();

  /**
   * `onChange(dir, name)`: something happened to `name` in `dir` (created, renamed in or out,
   * written, deleted); name undefined means "anything in dir may have changed".
   */
  constructor(
    private readonly onChange: (dir: string, name: string | undefined) => void,
    private readonly maxWatches = 2048,
  ) {}

  /** One more cached file in `dir`; starts watching it at the first. */
  add(dir: string): void {
    const known = this.dirs.get(dir);
    if (known) {
      known.files++;
      return;
    }
    this.dirs.set(dir, { watcher: this.dirs.size < this.maxWatches ? this.start(dir) : undefined, files: 1 });
  }

  /** One cached file fewer in `dir`; stops watching when none is left. */
  remove(dir: string): void {
    const known = this.dirs.get(dir);
    if (!known) return;
    if (--known.files > 0) return;
    known.watcher?.close();
    this.dirs.delete(dir);
  }

  /**
   * Watches `dir` afresh: called when a re-check found a change no event announced, which
   * means the watch follows an inode that is no longer at this path (directory replaced).
   */
  restart(dir: string): void {
    const known = this.dirs.get(dir);
    if (!known) return;
    known.watcher?.close();
    known.watcher = this.start(dir);
  }

  close(): void {
    for (const w of this.dirs.values()) w.watcher?.close();
    this.dirs.clear();
  }

  private start(dir: string): FSWatcher | undefined {
    try {
      // persistent: false — a watch must never keep a stopping server alive.
      const w = watch(dir, { persistent: false }, (_event, name) => this.onChange(dir, name ?? undefined));
      w.on("error", () => {
        // The directory went away or inotify gave up: forget the watch, distrust the copies.
        w.close();
        const known = this.dirs.get(dir);
        if (known?.watcher === w) known.watcher = undefined;
        this.onChange(dir, undefined);
      });
      return w;
    } catch {
      return undefined; // ENOSPC (inotify limit), ENOENT (removed meanwhile), ...: re-check only
    }
  }
}
