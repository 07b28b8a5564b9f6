/**
 * Counters of the public listeners' responses by status and path class, for /metrics. Each
 * serving process keeps its own; with `--workers N` the primary asks every worker for its
 * snapshot over IPC (src/server/workers.ts) and adds them up here.
 */

/** What a request was for, by URL path (client-protocol §1: the files a device fetches). */
export type PathClass = "channels" | "index" | "keyring" | "pool" | "version" | "signature" | "other";

export const PATH_CLASSES: readonly PathClass[] = ["channels", "index", "keyring", "pool", "version", "signature", "other"];

/** `"<class> <status>"` → count; plain JSON so it crosses the IPC channel as is. */
export type CountsSnapshot = Record<string, number>;

/**
 * The class of a canonical URL path. Signatures first: every `.asc` is one, whatever it signs
 * (a device fetches one after each document and file). Unparsed paths (undefined) are "other".
 */
export function classifyPath(path: string | undefined): PathClass {
  if (!path) return "other";
  if (path.endsWith(".asc")) return "signature";
  if (path === "/channels.json") return "channels";
  // The conventional name and the content-named copies channels.json points at (src/tree/versioned-index.ts).
  if (path.endsWith("/index.json") || /\/index-[0-9a-f]{16}\.json$/.test(path)) return "index";
  // The published keyrings, and device keyrings where the tree keeps them (beside the index).
  if (path.startsWith("/gpg/") || path.endsWith("/device-signing.tar.xz")) return "keyring";
  if (path.startsWith("/pool/")) return "pool";
  if (/\/version-\d+\.tar\.xz$/.test(path)) return "version";
  return "other";
}

export class RequestCounts {
  private readonly counts = new Map<string, number>();
  private changes = 0;

  record(path: string | undefined, status: number): void {
    const key = `${classifyPath(path)} ${status}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.changes++;
  }

  /** Increments since the process started; lets a worker skip sending an unchanged snapshot. */
  get version(): number {
    return this.changes;
  }

  snapshot(): CountsSnapshot {
    return Object.fromEntries(this.counts);
  }
}

/** Sum of several snapshots (one per worker, plus those of workers that have exited). */
export function addCounts(...snapshots: CountsSnapshot[]): CountsSnapshot {
  const out: CountsSnapshot = {};
  for (const s of snapshots) for (const [k, n] of Object.entries(s)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** Snapshot entries as labelled rows, sorted by class then status. */
export function countRows(s: CountsSnapshot): { class: string; status: string; count: number }[] {
  return Object.entries(s)
    .map(([k, count]) => {
      const [cls = "other", status = "0"] = k.split(" ");
      return { class: cls, status, count };
    })
    .sort(
      (a, b) => PATH_CLASSES.indexOf(a.class as PathClass) - PATH_CLASSES.indexOf(b.class as PathClass) || a.status.localeCompare(b.status),
    );
}
