/**
 * Waits for a quiet machine before a timed run (issue 19): the 1-minute load average of
 * /proc/loadavg at or below `maxLoad`, polled every `pollS` seconds for at most `maxWaitMin`
 * minutes; after that the run goes on and the result says it gave up, so the figure can be
 * read with that in mind.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface QuietResult {
  /** 1-minute load when the run started. */
  load: number;
  waitedS: number;
  gaveUp: boolean;
}

export const load1 = (): number => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

export async function waitQuiet(maxLoad: number, maxWaitMin: number, log: (s: string) => void, pollS = 15): Promise<QuietResult> {
  const start = Date.now();
  let said = 0;
  for (;;) {
    const load = load1();
    const waitedS = Math.round((Date.now() - start) / 1000);
    if (load <= maxLoad) {
      if (waitedS > 0) log(`load ${load.toFixed(2)} <= ${maxLoad} after ${waitedS} s`);
      return { load, waitedS, gaveUp: false };
    }
    if (waitedS >= maxWaitMin * 60) {
      log(`load ${load.toFixed(2)} still > ${maxLoad} after ${waitedS} s: gave up waiting, timing anyway`);
      return { load, waitedS, gaveUp: true };
    }
    if (waitedS - said >= 60 || said === 0) {
      log(`load ${load.toFixed(2)} > ${maxLoad}: waiting for a quiet machine (${waitedS} s so far, up to ${maxWaitMin} min)`);
      said = waitedS || 1;
    }
    await sleep(Math.min(pollS, Math.max(1, maxWaitMin * 60 - waitedS)) * 1000);
  }
}
