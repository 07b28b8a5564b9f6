/**
 * Expiring keyrings are loud (issue 14.4). Devices refuse an expired keyring and with it
 * every update signed under it (client-protocol §3 step 4; the UBports outage of April 2019
 * was an expired image-signing keyring), so `si serve` logs a warning at start and once a
 * day while a published keyring expires within `keyring_warn_days` (default 30), and an
 * error once it has expired. /healthz answers 503 for an expired one (handler.ts).
 */
import type { Config } from "../config/types.js";
import { errorMessage } from "../errors.js";
import type { LogEntry, ServerLogger } from "../server/log.js";
import { readFleet } from "./fleet.js";
import type { KeyringCatalog, KeyringInfo } from "./keyrings.js";

export const DEFAULT_KEYRING_WARN_DAYS = 30;
const DAY_MS = 86_400_000;

export function keyringWarnDays(config: Config): number {
  return config.keyring_warn_days ?? DEFAULT_KEYRING_WARN_DAYS;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");

function advice(k: KeyringInfo): string {
  // (keyring_auto_renew_days does this on its own; the README says so.)
  if (k.type === "image-signing")
    return "rebuild it with a fresh expiry (si generate-keyrings --force, then si keyring publish image-signing)";
  return "rebuild it and publish it again";
}

/** The log entry a keyring deserves at `now`: an error once expired, a warning within `warnDays`, else null. */
export function expiryEntry(k: KeyringInfo, now: Date, warnDays: number): LogEntry | null {
  const name = `${k.path}${k.type ? ` (${k.type})` : ""}`;
  const fields = { keyring: k.path, type: k.type ?? null, used_by: k.usedBy };
  if (k.error) return { level: "error", event: "keyring-unreadable", ...fields, msg: `Cannot read published keyring ${name}: ${k.error}` };
  if (k.expiry === undefined) return null;
  const leftMs = k.expiry * 1000 - now.getTime();
  const at = iso(k.expiry);
  if (leftMs < 0) {
    const days = Math.floor(-leftMs / DAY_MS);
    const ago = days === 0 ? "less than a day ago" : `${days} day${days === 1 ? "" : "s"} ago`;
    return {
      level: "error",
      event: "keyring-expired",
      ...fields,
      expiry: at,
      msg: `Keyring ${name} expired ${ago} (${at}): devices refuse it and every update signed under it; ${advice(k)}`,
    };
  }
  if (leftMs >= warnDays * DAY_MS) return null;
  const days = Math.floor(leftMs / DAY_MS);
  const left = days === 0 ? "in less than a day" : `in ${days} day${days === 1 ? "" : "s"}`;
  return {
    level: "warn",
    event: "keyring-expiring",
    ...fields,
    expiry: at,
    days_left: days,
    msg: `Keyring ${name} expires ${left} (${at}): devices will refuse it then; ${advice(k)} before that`,
  };
}

/** Published keyrings that are expired at `now` (what makes /healthz answer 503). */
export function expiredKeyrings(keyrings: KeyringInfo[], now: Date): KeyringInfo[] {
  return keyrings.filter((k) => k.expiry !== undefined && k.expiry * 1000 < now.getTime());
}

/** Checks every published keyring now and then every `everyMs` (a day) until stopped. */
export class KeyringWatch {
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly config: Config,
    private readonly catalog: KeyringCatalog,
    private readonly logger: ServerLogger,
    private readonly everyMs = DAY_MS,
  ) {}

  /** Logs one line per keyring needing attention; resolves when they are logged. */
  check(now = new Date()): Promise<void> {
    this.checking ??= this.run(now).finally(() => (this.checking = null));
    return this.checking;
  }

  private async run(now: Date): Promise<void> {
    try {
      const fleet = await readFleet(this.config, { images: false });
      const warnDays = keyringWarnDays(this.config);
      for (const k of await this.catalog.list(fleet)) {
        const entry = expiryEntry(k, now, warnDays);
        if (entry) this.logger.log(entry);
      }
    } catch (err) {
      this.logger.log({
        level: "error",
        event: "keyring-check-failed",
        msg: `Cannot check the published keyrings' expiry: ${errorMessage(err)}`,
      });
    }
  }

  /** The first check (awaited: its lines follow the start-up lines), then the daily ones. */
  async start(): Promise<void> {
    await this.check();
    const tick = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.check().then(tick), this.everyMs);
      // A pending daily check must not keep a stopping server alive.
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
