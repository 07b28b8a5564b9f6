/**
 * `global.generated_at` of index.json: Python's `strftime("%a %b %d %H:%M:%S UTC %Y", gmtime())`,
 * always English and UTC. The client parses it with `%a %b %d %H:%M:%S %Z %Y` and insists on
 * the `UTC` token; ISO 8601 crashes it (client-protocol §5.2, §11 #10).
 */
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const pad2 = (n: number) => String(n).padStart(2, "0");

/** `Sun Nov 29 05:44:37 UTC 2026` for the given instant (locale- and timezone-independent). */
export function formatGeneratedAt(when: Date): string {
  if (Number.isNaN(when.getTime())) throw new RangeError("Cannot format generated_at: invalid date");
  const d = DAYS[when.getUTCDay()];
  const m = MONTHS[when.getUTCMonth()];
  const time = `${pad2(when.getUTCHours())}:${pad2(when.getUTCMinutes())}:${pad2(when.getUTCSeconds())}`;
  return `${d} ${m} ${pad2(when.getUTCDate())} ${time} UTC ${when.getUTCFullYear()}`;
}

/** A clock: injected everywhere a time is written, so tests can fix it. */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();
