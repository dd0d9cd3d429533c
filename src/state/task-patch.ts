/**
 * Where a task's state is decided.
 *
 * Every event about a task becomes a TaskPatch; patches merge with `mergeTaskPatch`,
 * which is a join: commutative, associative and idempotent. So the same set of
 * events gives the same task whatever their order, however often they are
 * replayed, and whichever of several collectors writes them. The store applies
 * the very same rules in SQL (store/writes.ts) when it upserts a patch onto the
 * stored row, so no write ever needs to read first.
 *
 * The rules, field by field:
 * - state: the greatest `stateKey` (celery/states.ts explains the order).
 * - worker: from the worker-side event with the greatest state key.
 * - result + runtime, exception + traceback: from the event with the greatest key
 *   that carries them; the event stream beats the result backend's copy.
 * - descriptive fields (name, args, …): from the best source, first non-null.
 * - times: sent_at and first_seen_at take the earliest; received/started/finished
 *   the latest (the current run); retries the most.
 * - expired: once any event says a worker discarded it as expired, it stays so.
 */
import { foldPatches } from "./fold.ts";
import type { CeleryEvent } from "../celery/event.ts";
import { TASK_EVENT_STATE, type TaskState, isTaskEventType, stateKey } from "../celery/states.ts";

export const DESCRIPTIVE_FIELDS = [
  "name",
  "args",
  "kwargs",
  "queue",
  "routingKey",
  "exchange",
  "rootId",
  "parentId",
  "eta",
  "expires",
] as const;
export type DescriptiveField = (typeof DESCRIPTIVE_FIELDS)[number];

export interface TaskPatch {
  id: string;
  name: string | null;
  args: string | null;
  kwargs: string | null;
  queue: string | null;
  routingKey: string | null;
  exchange: string | null;
  rootId: string | null;
  parentId: string | null;
  eta: string | null;
  expires: string | null;
  /** 2 when the descriptive fields came from the event stream, 1 from the result backend, 0 none. */
  infoSource: number;

  state: TaskState;
  stateKey: number;
  worker: string | null;
  workerKey: number;
  result: string | null;
  runtime: number | null;
  resultKey: number;
  exception: string | null;
  traceback: string | null;
  exceptionKey: number;

  retries: number | null;
  sentAt: number | null;
  receivedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  firstSeenAt: number;
  /** The sender's timestamp of the latest event (not the collector's clock, so a replay changes nothing). */
  lastEventAt: number;
  /**
   * A worker took it from the queue after its `expires` and discarded it
   * unrun: `task-revoked` with `expired: true` (Celery's Request.revoked),
   * or the result backend's REVOKED with TaskRevokedError('expired').
   */
  expired: boolean;
}

/** Event stream facts outrank the result backend's (its args are JSON, not Celery's repr). */
const SOURCE_BONUS = { events: 1e15, "result-backend": 0 } as const;

export const FIELD_OF: Record<DescriptiveField, string> = {
  name: "name",
  args: "args",
  kwargs: "kwargs",
  queue: "queue",
  routingKey: "routing_key",
  exchange: "exchange",
  rootId: "root_id",
  parentId: "parent_id",
  eta: "eta",
  expires: "expires",
};

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}
function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** The patch one task event contributes; null for events that are not about a task. */
export function taskPatchFromEvent(e: CeleryEvent): TaskPatch | null {
  if (!e.uuid || !isTaskEventType(e.type)) return null;
  const state = TASK_EVENT_STATE[e.type];
  const key = stateKey(state, e.timestamp);
  const f = e.fields;
  const fromWorker = e.type !== "task-sent" && e.hostname !== "";
  const ready = state === "SUCCESS" || state === "FAILURE" || state === "REVOKED";
  const p: TaskPatch = {
    id: e.uuid,
    name: null,
    args: null,
    kwargs: null,
    queue: null,
    routingKey: null,
    exchange: null,
    rootId: null,
    parentId: null,
    eta: null,
    expires: null,
    infoSource: 0,
    state,
    stateKey: key,
    worker: fromWorker ? e.hostname : null,
    workerKey: fromWorker ? key : 0,
    result: null,
    runtime: null,
    resultKey: 0,
    exception: null,
    traceback: null,
    exceptionKey: 0,
    retries: num(f.retries),
    sentAt: e.type === "task-sent" ? e.timestamp : null,
    receivedAt: e.type === "task-received" ? e.timestamp : null,
    // The result backend's STARTED carries no time (its timestamp is when we
    // received it, possibly after the task finished): only events date a start.
    startedAt: e.type === "task-started" && e.source === "events" ? e.timestamp : null,
    finishedAt: ready ? e.timestamp : null,
    firstSeenAt: e.timestamp,
    lastEventAt: e.timestamp,
    expired: e.type === "task-revoked" && f.expired === true,
  };
  for (const field of DESCRIPTIVE_FIELDS) {
    const v = str(f[FIELD_OF[field]]);
    if (v !== null) {
      p[field] = v;
      p.infoSource = e.source === "events" ? 2 : 1;
    }
  }
  if (e.type === "task-succeeded") {
    p.result = str(f.result);
    p.runtime = num(f.runtime);
    p.resultKey = SOURCE_BONUS[e.source] + key;
  }
  const exception = str(f.exception);
  const traceback = str(f.traceback);
  if (exception !== null || traceback !== null) {
    p.exception = exception;
    p.traceback = traceback;
    p.exceptionKey = SOURCE_BONUS[e.source] + key;
  }
  return p;
}

const minN = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
const maxN = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

/**
 * Joins two patches of the same task. Ties on a key keep the lexically
 * greater value so that even equal keys merge the same way in any order.
 */
export function mergeTaskPatch(a: TaskPatch, b: TaskPatch): TaskPatch {
  const out: TaskPatch = { ...a };
  const [hi, lo] = a.infoSource >= b.infoSource ? [a, b] : [b, a];
  for (const field of DESCRIPTIVE_FIELDS) out[field] = hi[field] ?? lo[field];
  out.infoSource = hi.infoSource;

  const s = pick(a, b, "stateKey", (p) => p.state);
  out.state = s.state;
  out.stateKey = s.stateKey;
  const w = pick(a, b, "workerKey", (p) => p.worker ?? "");
  out.worker = w.worker;
  out.workerKey = w.workerKey;
  const r = pick(a, b, "resultKey", (p) => `${p.result ?? ""}\u0001${p.runtime ?? ""}`);
  out.result = r.result;
  out.runtime = r.runtime;
  out.resultKey = r.resultKey;
  const x = pick(a, b, "exceptionKey", (p) => `${p.exception ?? ""}\u0001${p.traceback ?? ""}`);
  out.exception = x.exception;
  out.traceback = x.traceback;
  out.exceptionKey = x.exceptionKey;

  out.retries = maxN(a.retries, b.retries);
  out.sentAt = minN(a.sentAt, b.sentAt);
  out.receivedAt = maxN(a.receivedAt, b.receivedAt);
  out.startedAt = maxN(a.startedAt, b.startedAt);
  out.finishedAt = maxN(a.finishedAt, b.finishedAt);
  out.firstSeenAt = Math.min(a.firstSeenAt, b.firstSeenAt);
  out.lastEventAt = Math.max(a.lastEventAt, b.lastEventAt);
  out.expired = a.expired || b.expired;
  return out;
}

function pick(a: TaskPatch, b: TaskPatch, key: "stateKey" | "workerKey" | "resultKey" | "exceptionKey", tie: (p: TaskPatch) => string): TaskPatch {
  if (a[key] !== b[key]) return a[key] > b[key] ? a : b;
  return tie(a) >= tie(b) ? a : b;
}

/** Folds a batch of events into one patch per task. */
export function taskPatchesFromEvents(events: Iterable<CeleryEvent>): Map<string, TaskPatch> {
  return foldPatches(events, taskPatchFromEvent, (p) => p.id, mergeTaskPatch);
}
