/**
 * The instance's state database (`<state_path>/history.sqlite`) for stores other than the
 * import history (mirror pushes, rollouts, fleet adoption): same file, same migrations, so
 * one backup holds all of an instance's state.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type BetterSqlite3 from "better-sqlite3";
import { migrate } from "./schema.js";

/** Opens (and migrates) the state database; the caller closes it. */
export function openStateDb(statePath: string): BetterSqlite3.Database {
  mkdirSync(statePath, { recursive: true });
  const db = new Database(join(statePath, "history.sqlite"), { timeout: 5000 });
  try {
    db.pragma("journal_mode = WAL");
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
