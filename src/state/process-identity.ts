/**
 * Who owns an import run, and whether that owner still exists. A run row records the pid of
 * the process that started it, plus what makes a pid unique over time on Linux: the kernel's
 * boot id (/proc/sys/kernel/random/boot_id, new at every boot) and the process start time
 * (/proc/<pid>/stat field 22, clock ticks since boot). A pid that exists again after a crash
 * (pid reuse) has another start time; after a power loss the boot id differs.
 *
 * The pid namespace is recorded too: a pid only means something inside its namespace (two
 * containers sharing one state directory). Whatever cannot be checked from here is "unknown"
 * and left to the caller (src/state/history.ts asks the global lock then).
 */
import { readFileSync, readlinkSync } from "node:fs";

export interface ProcessIdentity {
  pid: number;
  /** null where /proc is not available (not Linux). */
  bootId: string | null;
  /** Clock ticks after boot; null where /proc is not available. */
  startTime: number | null;
  /** e.g. "pid:[4026531836]"; null where /proc is not available. */
  pidNs: string | null;
}

export type OwnerState =
  | { state: "alive" }
  | { state: "gone"; why: string }
  /** Another boot or pid namespace, or no pid recorded: this process cannot tell. */
  | { state: "unknown"; why: string };

function readOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

let cached: Omit<ProcessIdentity, "pid" | "startTime"> | undefined;

/** State letter and start time from /proc/<pid>/stat; null when there is no such entry. */
export function procStat(pid: number | "self"): { state: string; startTime: number } | null {
  return readOr(() => {
    const text = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Field 2 (comm) is in parentheses and may hold spaces or ')': fields resume after the last ')'.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const startTime = Number(rest[19]);
    return Number.isSafeInteger(startTime) ? { state: rest[0] ?? "?", startTime } : null;
  }, null);
}

/** This process, as a run row records it. */
export function currentIdentity(): ProcessIdentity {
  cached ??= {
    bootId: readOr(() => readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim() || null, null),
    pidNs: readOr(() => readlinkSync("/proc/self/ns/pid"), null),
  };
  return { pid: process.pid, ...cached, startTime: procStat("self")?.startTime ?? null };
}

/** kill(pid, 0): false only when no such process exists (EPERM = exists, another user's). */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** The owner columns of a run row. */
export interface RecordedOwner {
  pid: number | null;
  bootId?: string | null;
  startTime?: number | null;
  pidNs?: string | null;
}

/** Whether the process that recorded `owner` is still running, as far as this process can tell. */
export function ownerState(owner: RecordedOwner, me: ProcessIdentity = currentIdentity()): OwnerState {
  const { pid } = owner;
  if (pid === null || !Number.isSafeInteger(pid) || pid <= 0) return { state: "unknown", why: "no process id was recorded (a run started by an older version)" };
  if (owner.bootId && me.bootId && owner.bootId !== me.bootId) return { state: "unknown", why: `the machine was restarted since process ${pid} started the run` };
  if (owner.pidNs && me.pidNs && owner.pidNs !== me.pidNs) return { state: "unknown", why: `process ${pid} ran in another pid namespace (container)` };
  // kill(0) before /proc: with hidepid, another user's live process has no /proc entry.
  if (!pidExists(pid)) return { state: "gone", why: `process ${pid} no longer exists` };
  const stat = procStat(pid);
  if (!stat) return { state: "alive" };
  // A zombie has finished everything it will ever do; its parent just has not reaped it yet.
  if (stat.state === "Z" || stat.state === "X") return { state: "gone", why: `process ${pid} has exited` };
  if (owner.startTime != null && stat.startTime !== owner.startTime) {
    return { state: "gone", why: `process ${pid} no longer exists (the pid now belongs to another process)` };
  }
  return { state: "alive" };
}
