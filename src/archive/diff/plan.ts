/**
 * The order of the delta's members. Pure.
 *
 * `removed` comes first (§6.4). Then the members to write follow the NEW image's archive
 * order, so pass 2 can stream each file's content straight from the new image into the delta
 * without holding or spilling it; the reference's code-point order would need random access
 * to the image. The one reordering is for hard links: a link whose target is also written
 * waits until that target has been written (client-protocol §8.3: tar links to what is
 * already on disk). Links carry no content, so holding them back costs a header each.
 */
import type { Catalogue } from "./catalogue.js";

/** `removed` member content: one path per line, each followed by "\n"; "\n" when empty (§6.4). */
export function removedContent(removed: readonly string[]): Buffer {
  return Buffer.from(removed.length === 0 ? "\n" : removed.map((p) => `${p}\n`).join(""), "utf8");
}

/** Paths to write, in the order they must appear in the delta (after `removed`). */
export function planMemberOrder(newCat: Catalogue, write: ReadonlySet<string>): string[] {
  const byOrdinal = [...write].sort((a, b) => newCat.ordinal(a)! - newCat.ordinal(b)!);
  const out: string[] = [];
  const written = new Set<string>();
  const waiting = new Map<string, string[]>();

  const emit = (path: string): void => {
    const stack = [path];
    while (stack.length > 0) {
      const p = stack.pop()!;
      out.push(p);
      written.add(p);
      const released = waiting.get(p);
      if (released) {
        waiting.delete(p);
        // Reverse so the released links keep their archive order.
        for (let i = released.length - 1; i >= 0; i--) stack.push(released[i]!);
      }
    }
  };

  for (const path of byOrdinal) {
    const e = newCat.get(path)!;
    const target = e.type === "link" ? e.linkname : undefined;
    if (target !== undefined && target !== path && write.has(target) && !written.has(target)) {
      const list = waiting.get(target);
      if (list) list.push(path);
      else waiting.set(target, [path]);
      continue;
    }
    emit(path);
  }
  // Only a cycle of links can still wait; such an image cannot be extracted either.
  const stuck = [...waiting.values()].flat().filter((p) => !written.has(p));
  stuck.sort((a, b) => newCat.ordinal(a)! - newCat.ordinal(b)!);
  for (const p of stuck) if (!written.has(p)) emit(p);
  return out;
}
