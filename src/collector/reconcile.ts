/**
 * Gap reconciliation: events published while the stream was down are lost,
 * but the result backend keeps each task's final state. After a gap, the
 * tasks left unfinished are looked up there and what is found is written to
 * the store as the collector writes any result-backend message. The
 * event_gap check (detect/checks/event-gap.ts) calls it once per gap.
 */
import type { BrokerPort } from "../broker/port.ts";
import type { CeleryEvent } from "../celery/event.ts";
import { decodeResultMeta } from "../celery/result-meta.ts";
import type { Database } from "../store/database.ts";
import { taskStates, unfinishedSince } from "../store/queries/detect.ts";
import { isTaskState, READY_STATES } from "../celery/states.ts";
import { writeBatch } from "../store/writes.ts";
import { buildBatch } from "./batch.ts";
import type { StreamGap } from "./collector.ts";

/** Tasks last heard of this long before a gap may have finished during it. */
const LOOK_BACK_S = 3600;
/** Recovered task ids named in the result (the count is always whole). */
const MAX_NAMED = 50;

export interface Reconciliation {
  /** Unfinished tasks looked up. */
  checked: number;
  /** Of those, tasks the result backend had a final state for (now written). */
  recovered: number;
  recovered_tasks: string[];
  /** One sentence for the alert's summary. */
  note: string;
}

export async function reconcileGap(o: {
  database: Database;
  /** Null, or `resultBackend` false: nothing can be read, only counted. */
  broker: BrokerPort | null;
  /** The broker's name: its unfinished tasks are looked up, and written back under it. */
  brokerName?: string;
  resultBackend: boolean;
  gap: StreamGap;
  /** Unix seconds, the arrival time given to what is read. */
  clock: () => number;
}): Promise<Reconciliation> {
  const { database, broker, gap } = o;
  // Tasks active shortly before the gap, or during it, may have finished unseen.
  const unfinished = await unfinishedSince(database, new Date((gap.from - LOOK_BACK_S) * 1000), undefined, o.brokerName);
  // Tasks whose every event was lost are not in the store at all: the broker may have named them (an overflow).
  const named = gap.taskIds?.length ? await taskStates(database, gap.taskIds) : new Map<string, string>();
  const unseen = (gap.taskIds ?? []).filter((id) => {
    const state = named.get(id);
    return state === undefined || !(isTaskState(state) && READY_STATES.has(state));
  });
  const ids = [...new Set([...unfinished, ...unseen])];
  if (!broker || !o.resultBackend) {
    return { checked: ids.length, recovered: 0, recovered_tasks: [], note: `${ids.length} unfinished tasks could not be checked: set RESULT_BACKEND_URL to recover their final states.` };
  }
  const recovered: string[] = [];
  const events: CeleryEvent[] = [];
  for (const id of ids) {
    const raw = await broker.getResult(id).catch(() => null);
    if (!raw) continue;
    // A stored STARTED says nothing the store does not know; only final states count.
    const final = decodeResultMeta(raw, o.clock()).events.filter((e) => e.type !== "task-started");
    events.push(...final);
    if (final.length) recovered.push(id);
  }
  if (events.length) await writeBatch(database, { ...buildBatch(events), broker: o.brokerName });
  return {
    checked: ids.length,
    recovered: recovered.length,
    recovered_tasks: recovered.slice(0, MAX_NAMED),
    note: `Reconciled: ${recovered.length} of ${ids.length} unfinished tasks had a final state in the result backend.`,
  };
}
