/**
 * Bounds on the polling-client rows (`fleet_clients`) requests can make us store. A client is
 * a salted hash of address and User-Agent, both chosen by whoever sends the request: without a
 * bound, one host cycling User-Agents adds a row per request, and the state database (which
 * also holds the import history) grows until the disk is full (SECURITY.md, "Figures fed by
 * unauthenticated requests").
 *
 * - At most CLIENTS_PER_DAY rows per channel/device and UTC day: beyond it the day's figure
 *   is saturated (reported as is, with one warning), never the disk.
 * - Rows older than CLIENT_DAYS_KEPT days are deleted, once a day.
 */
import type BetterSqlite3 from "better-sqlite3";

export const CLIENTS_PER_DAY = 250_000;
export const CLIENT_DAYS_KEPT = 62;

const INSERT = "INSERT OR IGNORE INTO fleet_clients (day, channel, device, client) VALUES (?, ?, ?, ?)";
const COUNT = "SELECT COUNT(*) AS n FROM fleet_clients WHERE day = ? AND channel = ? AND device = ?";
const PRUNE = "DELETE FROM fleet_clients WHERE day < ?";

export interface ClientRow {
  bucket: string;
  channel: string;
  device: string;
  client: string;
}

export class ClientRows {
  /** Rows per `day\0channel\0device` (read from the table the first time a key is met). */
  private readonly counts = new Map<string, number>();
  private prunedFor = "";

  constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly perDay = CLIENTS_PER_DAY,
  ) {}

  /** Inserts `rows` (inside the caller's transaction); returns the keys that hit the cap. */
  insert(rows: Iterable<ClientRow>): string[] {
    const ins = this.db.prepare(INSERT);
    const count = this.db.prepare(COUNT);
    const capped = new Set<string>();
    for (const r of rows) {
      const key = `${r.bucket}\0${r.channel}\0${r.device}`;
      let n = this.counts.get(key);
      if (n === undefined) {
        if (this.counts.size > 10_000) this.counts.clear(); // a new day's keys replace the old
        n = (count.get(r.bucket, r.channel, r.device) as { n: number }).n;
      }
      if (n >= this.perDay) {
        capped.add(`${r.channel}/${r.device} on ${r.bucket}`);
      } else {
        n += ins.run(r.bucket, r.channel, r.device, r.client).changes;
      }
      this.counts.set(key, n);
    }
    return [...capped];
  }

  /** Deletes the rows of days before `today` − CLIENT_DAYS_KEPT, at most once per `today`. */
  prune(today: string, keptDays = CLIENT_DAYS_KEPT): void {
    if (this.prunedFor === today) return;
    const cutoff = new Date(Date.parse(`${today}T00:00:00Z`) - keptDays * 86_400_000).toISOString().slice(0, 10);
    this.db.prepare(PRUNE).run(cutoff);
    this.prunedFor = today;
  }
}
