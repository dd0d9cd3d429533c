/**
 * Folds a batch of events into one patch per key (a task id, a hostname),
 * merging patches of the same key with the entity's own merge rule: a batch
 * becomes one row per entity before it reaches the database.
 */
import type { CeleryEvent } from "../celery/event.ts";

export function foldPatches<P>(
  events: Iterable<CeleryEvent>,
  patchOf: (e: CeleryEvent) => P | null,
  keyOf: (p: P) => string,
  merge: (a: P, b: P) => P,
): Map<string, P> {
  const out = new Map<string, P>();
  for (const e of events) {
    const p = patchOf(e);
    if (!p) continue;
    const key = keyOf(p);
    const prev = out.get(key);
    out.set(key, prev ? merge(prev, p) : p);
  }
  return out;
}
