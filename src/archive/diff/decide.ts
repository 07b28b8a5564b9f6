/**
 * The deciding side of the one-pass delta (one-pass.ts reads both images once,
 * ordered-output.ts writes): each new member is decided (write or drop) as soon as the old
 * catalogue can answer for its path. Rules are those of compare.ts; this file only decides.
 *
 * Deciding a new member P:
 *   - the old scan has seen P: compare.ts's entryChanged(); a regular file whose metadata
 *     is equal waits for its SHA-256 (computed while its content streams past, held until
 *     then); a hard link whose own entry is equal follows its target (LP #1444347);
 *   - the old scan has finished without P: added;
 *   - the old scan has gone past P without seeing it: added, by SPECULATION. Both readers
 *     note every path both have seen; while those pairs come in the same order in both
 *     images (rootfs builds of one tree), "old went past P" means "old has no P". The first
 *     pair out of order turns speculation off for the rest of the run.
 * A hard link waits here for its target's fate; the order members are written in, and the
 * holding of those behind an undecided one, are ordered-output.ts's.
 */
import type { DeltaMtimePolicy } from "../../config/types.js";
import { Catalogue } from "./catalogue.js";
import { entryChanged } from "./compare.js";
import type { Item, OrderedOutput } from "./ordered-output.js";

/** What the decider needs of OnePassOptions (one-pass.ts). */
export interface DecideOptions {
  /** Tests: turn speculation off. */
  speculate?: boolean;
  /** What counts as a change (compare.ts); default "content". */
  mtime?: DeltaMtimePolicy;
}

/** What OnePassDelta's readers feed (catalogues, end of each scan) and the decisions they act on. */
export abstract class OnePassDecider {
  oldCat = new Catalogue();
  protected readonly policy: DeltaMtimePolicy;
  readonly newCat = new Catalogue();
  protected oldDone = false;
  protected newDone = false;
  protected readonly undecided = new Map<string, Item>();
  /** Undecided only for want of the old scan, in new-archive order. */
  protected readonly waitingForOld = new Map<string, Item>();
  protected readonly linkWaiters = new Map<string, Item[]>();
  protected readonly writeSet = new Set<string>();
  /** Decided "added" by speculation: the old scan must not name them later. */
  protected readonly speculated = new Set<string>();
  private speculate: boolean;
  private maxNew = -1;
  private maxOld = -1;
  protected failure: string | undefined;
  protected abstract readonly out: OrderedOutput;

  constructor(opts: DecideOptions) {
    this.speculate = opts.speculate ?? true;
    this.policy = opts.mtime ?? "content";
  }

  /** Marks the one-pass output as discarded; the new reader stops writing (stopWriting). */
  protected fail(why: string): void {
    this.failure ??= why;
  }

  /** A path both readers have seen, at these positions: moves the speculation frontier. */
  protected pair(n: number, o: number): void {
    if (n < this.maxNew || o < this.maxOld) this.speculate = false;
    this.maxNew = Math.max(this.maxNew, n);
    this.maxOld = Math.max(this.maxOld, o);
    if (!this.speculate) return;
    for (const item of this.waitingForOld.values()) {
      if (item.ordinal >= this.maxNew) break; // new-archive order: the rest is further on
      this.tryDecide(item);
    }
  }

  /**
   * The old image has a path written as "added" by speculation: harmless if it is changed
   * anyway, else the one-pass output is not the canonical delta (decided early to save CPU).
   */
  protected checkSpeculation(name: string): void {
    const b = this.newCat.get(name)!;
    if (b.type === "file" && b.sha256 === undefined) return; // still streaming: the final check decides
    if (!entryChanged(this.oldCat.get(name)!, b, this.policy))
      this.fail(`a speculation proved wrong ('${name}' is in the old image after all)`);
  }

  protected tryDecide(item: Item): void {
    if (item.write !== undefined || this.failure) return;
    const a = this.oldCat.get(item.name);
    if (!a) {
      if (this.oldDone) return this.decide(item, true);
      if (this.speculate && item.ordinal < this.maxNew) {
        this.speculated.add(item.name);
        return this.decide(item, true);
      }
      this.waitingForOld.set(item.name, item);
      return;
    }
    this.waitingForOld.delete(item.name);
    const b = this.newCat.get(item.name)!;
    if (!item.hashed) {
      // Content still streaming: decidable now only if the metadata alone differs.
      // With the "content" policy an mtime-only difference is no difference: such a file
      // waits for its SHA-256 like one whose metadata is all equal.
      if (entryChanged(a, { ...b, sha256: a.sha256 }, this.policy)) this.decide(item, true);
      return;
    }
    if (entryChanged(a, b, this.policy)) return this.decide(item, true);
    const target = b.type === "link" ? b.linkname : undefined;
    if (target === undefined || target === item.name) return this.decide(item, false);
    // LP #1444347: an unchanged hard link is rewritten with its target (compare.ts).
    if (this.newCat.has(target) && !this.undecided.has(target)) return this.decide(item, this.writeSet.has(target));
    if (!this.newCat.has(target) && this.newDone) return this.decide(item, false);
    const list = this.linkWaiters.get(target);
    if (list) list.push(item);
    else this.linkWaiters.set(target, [item]);
  }

  private decide(item: Item, write: boolean): void {
    item.write = write;
    this.undecided.delete(item.name);
    this.waitingForOld.delete(item.name);
    if (write) this.writeSet.add(item.name);
    else if (item.held) this.out.drop(item);
    const links = this.linkWaiters.get(item.name);
    if (links) {
      this.linkWaiters.delete(item.name);
      for (const l of links) this.tryDecide(l);
    }
  }
}
