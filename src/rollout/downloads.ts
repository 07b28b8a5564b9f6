/**
 * Where the pause rule gets its figures: downloads of one image version (full and deltas)
 * started and completed since a time. The fleet store (src/fleet/store.ts) counts them from
 * what `si serve` served; tests inject their own.
 */
import { downloadCounts } from "../fleet/store.js";
import type { DownloadFigures } from "./model.js";

export interface DownloadQuery {
  channel: string;
  device: string;
  version: number;
  since: Date;
}

export type DownloadCounts = (statePath: string, q: DownloadQuery) => DownloadFigures | Promise<DownloadFigures>;

/** The fleet store's counts (hour resolution: the hour holding `since` counts whole). */
export const fleetCounts: DownloadCounts = downloadCounts;
