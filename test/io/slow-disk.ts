/**
 * A slow disk for download tests: the download's destination is a FIFO drained by a python3
 * process that reads 64 KiB at a time with a pause every 512 KiB, so writes back up into the
 * fetcher exactly as they do on a disk slower than the network. It hashes what it reads, so a
 * test can check the bytes that reached the "disk" too, not only the fetcher's own sha256.
 * `hold` keeps the FIFO open but unread until `release()`: a disk that stalls.
 */
import { spawn, execFileSync } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";

const READER = `
import sys, hashlib, time
path = sys.argv[1]
for line in sys.stdin:
    if line.startswith("hold"):
        line = ""
    h, n, k = hashlib.sha256(), 0, 0
    with open(path, "rb", buffering=0) as f:
        if not line:
            sys.stdin.readline()
        while True:
            b = f.read(65536)
            if not b:
                break
            h.update(b); n += len(b); k += 1
            if k % 8 == 0:
                time.sleep(0.001)
    print(n, h.hexdigest(), flush=True)
`;

export interface SlowDisk {
  /** The FIFO to download into. */
  path: string;
  /** Arms the reader for one download; resolves with what it read once the writer closes. */
  next(opts?: { hold?: boolean }): Promise<{ size: number; sha256: string }>;
  /** Lets a held reader start reading. */
  release(): void;
  close(): void;
}

export function slowDisk(dir: string): SlowDisk {
  const path = join(dir, "slow-disk.fifo");
  execFileSync("mkfifo", [path]);
  const py = spawn("python3", ["-c", READER, path], { stdio: ["pipe", "pipe", "inherit"] });
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: py.stdout }).on("line", (line) => waiting.shift()?.(line));
  return {
    path,
    next(opts = {}) {
      py.stdin.write(opts.hold ? "hold\n" : "go\n");
      return new Promise((resolve) =>
        waiting.push((line) => {
          const [size, sha256] = line.split(" ");
          resolve({ size: Number(size), sha256: sha256 });
        }),
      );
    },
    release() {
      py.stdin.write("go\n");
    },
    close() {
      py.kill();
    },
  };
}
