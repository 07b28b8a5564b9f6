/**
 * Staged rollouts (issue 17) in the state database's `rollouts` table: one row per rollout of
 * one image version of one channel/device. The newest row of a channel/device is its rollout;
 * older rows are history (superseded, completed, aborted).
 *
 * Times are ISO 8601 UTC strings; `steps` is the `5%@0h, 25%@24h, 100%@72h` form
 * (model/rollout-steps.ts), `step` the index of the step the image is at now.
 */
import type BetterSqlite3 from "better-sqlite3";
import type { RolloutStep } from "../config/types.js";
import { formatRolloutSteps, parseRolloutSteps } from "../model/rollout-steps.js";
import { openStateDb } from "./db.js";

/**
 * active: raised at each step's time; paused: kept at its percentage (by hand or by the pause
 * rule); completed: at 100 %; aborted: pulled (0 %); superseded: a newer version came.
 */
export type RolloutState = "active" | "paused" | "completed" | "aborted" | "superseded";

export interface Rollout {
  id: number;
  channel: string;
  device: string;
  version: number;
  steps: RolloutStep[];
  startedAt: Date;
  state: RolloutState;
  /** Index into steps of the percentage the image is at. */
  step: number;
  /** Start of the pause rule's window: the raise to this step, or the last resume. */
  stepStartedAt: Date;
  /** Hours spent paused (earlier pauses); they do not count toward the next step's time. */
  pausedHours: number;
  pausedAt: Date | null;
  /** Why it is paused, aborted or superseded. */
  reason: string | null;
  /** The pause rule: completed/started below floor % after grace_hours and min_downloads. */
  floor: number;
  graceHours: number;
  minDownloads: number;
  updatedAt: Date;
}

export type NewRollout = Pick<Rollout, "channel" | "device" | "version" | "steps" | "floor" | "graceHours" | "minDownloads"> & {
  startedAt: Date;
  /** Default 0. */
  step?: number;
};

interface Row {
  id: number;
  channel: string;
  device: string;
  version: number;
  steps: string;
  started_at: string;
  state: RolloutState;
  step: number;
  step_started_at: string;
  paused_hours: number;
  paused_at: string | null;
  reason: string | null;
  floor: number;
  grace_hours: number;
  min_downloads: number;
  updated_at: string;
}

const fromRow = (r: Row): Rollout => ({
  id: r.id,
  channel: r.channel,
  device: r.device,
  version: r.version,
  steps: parseRolloutSteps(r.steps),
  startedAt: new Date(r.started_at),
  state: r.state,
  step: r.step,
  stepStartedAt: new Date(r.step_started_at),
  pausedHours: r.paused_hours,
  pausedAt: r.paused_at ? new Date(r.paused_at) : null,
  reason: r.reason,
  floor: r.floor,
  graceHours: r.grace_hours,
  minDownloads: r.min_downloads,
  updatedAt: new Date(r.updated_at),
});

const HOUR_MS = 3_600_000;
export const OPEN_STATES: readonly RolloutState[] = ["active", "paused"];

export class RolloutStore {
  private constructor(private readonly db: BetterSqlite3.Database) {}

  static open(statePath: string): RolloutStore {
    return new RolloutStore(openStateDb(statePath));
  }

  /** Runs `fn` with a store opened on `statePath`, closed afterwards. */
  static with<T>(statePath: string, fn: (store: RolloutStore) => T): T {
    const store = RolloutStore.open(statePath);
    try {
      return fn(store);
    } finally {
      store.close();
    }
  }

  /**
   * Records a new rollout; an open one of the same channel/device (an older version's) is
   * marked superseded in the same transaction. Returns the new row.
   */
  start(r: NewRollout): Rollout {
    const at = r.startedAt.toISOString();
    const insert = this.db.transaction(() => {
      this.db
        .prepare(
          `UPDATE rollouts SET state = 'superseded', reason = ?, updated_at = ?
           WHERE channel = ? AND device = ? AND state IN ('active', 'paused')`,
        )
        .run(`version ${r.version} started a rollout`, at, r.channel, r.device);
      const res = this.db
        .prepare(
          `INSERT INTO rollouts (channel, device, version, steps, started_at, state, step, step_started_at, floor, grace_hours, min_downloads, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          r.channel,
          r.device,
          r.version,
          formatRolloutSteps(r.steps),
          at,
          (r.step ?? 0) === r.steps.length - 1 ? "completed" : "active",
          r.step ?? 0,
          at,
          r.floor,
          r.graceHours,
          r.minDownloads,
          at,
        );
      return Number(res.lastInsertRowid);
    });
    return this.get(insert())!;
  }

  get(id: number): Rollout | undefined {
    const r = this.db.prepare("SELECT * FROM rollouts WHERE id = ?").get(id) as Row | undefined;
    return r && fromRow(r);
  }

  /** The newest rollout of a channel/device, whatever its state. */
  latest(channel: string, device: string): Rollout | undefined {
    const r = this.db.prepare("SELECT * FROM rollouts WHERE channel = ? AND device = ? ORDER BY id DESC LIMIT 1").get(channel, device) as
      | Row
      | undefined;
    return r && fromRow(r);
  }

  /** The newest rollout of every channel/device, ordered by channel and device. */
  latestPerDevice(): Rollout[] {
    const rows = this.db
      .prepare("SELECT * FROM rollouts WHERE id IN (SELECT MAX(id) FROM rollouts GROUP BY channel, device) ORDER BY channel, device")
      .all() as Row[];
    return rows.map(fromRow);
  }

  /** Rollouts still active or paused, oldest first. */
  open(): Rollout[] {
    return (this.db.prepare("SELECT * FROM rollouts WHERE state IN ('active', 'paused') ORDER BY id").all() as Row[]).map(fromRow);
  }

  /** Moves an active rollout to `step` (completed when it is the last one). */
  advance(id: number, step: number, at: Date): void {
    const r = this.get(id);
    if (!r) return;
    const state: RolloutState = step >= r.steps.length - 1 ? "completed" : "active";
    this.db
      .prepare("UPDATE rollouts SET step = ?, step_started_at = ?, state = ?, updated_at = ? WHERE id = ? AND state = 'active'")
      .run(step, at.toISOString(), state, at.toISOString(), id);
  }

  /** active → paused, with the reason. False when it was not active. */
  pause(id: number, reason: string, at: Date): boolean {
    return (
      this.db
        .prepare("UPDATE rollouts SET state = 'paused', paused_at = ?, reason = ?, updated_at = ? WHERE id = ? AND state = 'active'")
        .run(at.toISOString(), reason, at.toISOString(), id).changes > 0
    );
  }

  /**
   * paused → active: the time paused is added to paused_hours (so it does not count toward
   * the next step) and the pause rule's window starts again now.
   */
  resume(id: number, at: Date): boolean {
    const r = this.get(id);
    if (!r || r.state !== "paused") return false;
    const paused = r.pausedAt ? Math.max(0, at.getTime() - r.pausedAt.getTime()) / HOUR_MS : 0;
    return (
      this.db
        .prepare(
          `UPDATE rollouts SET state = 'active', paused_hours = paused_hours + ?, paused_at = NULL, reason = NULL,
           step_started_at = ?, updated_at = ? WHERE id = ? AND state = 'paused'`,
        )
        .run(paused, at.toISOString(), at.toISOString(), id).changes > 0
    );
  }

  /** Ends an open rollout as aborted or superseded (or completed), with the reason. */
  end(id: number, state: Exclude<RolloutState, "active" | "paused">, reason: string | null, at: Date): boolean {
    return (
      this.db
        .prepare("UPDATE rollouts SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state IN ('active', 'paused')")
        .run(state, reason, at.toISOString(), id).changes > 0
    );
  }

  close(): void {
    this.db.close();
  }
}
