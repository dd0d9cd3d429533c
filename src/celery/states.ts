/**
 * Celery's task states, in Celery's own words (celery/states.py).
 */
export const TASK_STATES = [
  "PENDING",
  "RECEIVED",
  "STARTED",
  "SUCCESS",
  "FAILURE",
  "RETRY",
  "REVOKED",
  "REJECTED",
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States after which a task never runs again (Celery's READY_STATES). */
export const READY_STATES: ReadonlySet<TaskState> = new Set(["SUCCESS", "FAILURE", "REVOKED"]);

/**
 * States a task can still leave by running: the detectors' and the gap
 * reconciliation's working set, and the partial index tasks_unfinished_idx.
 */
export const UNFINISHED_STATES = ["PENDING", "RECEIVED", "STARTED", "RETRY"] as const satisfies readonly TaskState[];
/** Unfinished states in which a worker holds the task (reserved or running). */
export const AT_WORKER_STATES = ["RECEIVED", "STARTED"] as const satisfies readonly TaskState[];

/** `'A', 'B'` for an SQL `in (…)` list; the states are constants, never input. */
export function sqlStateList(states: readonly TaskState[]): string {
  return states.map((s) => `'${s}'`).join(", ");
}

export function isTaskState(s: string): s is TaskState {
  return (TASK_STATES as readonly string[]).includes(s);
}

/** Which state each task event moves a task to (celery/events/state.py TASK_EVENT_TO_STATE). */
export const TASK_EVENT_STATE = {
  "task-sent": "PENDING",
  "task-received": "RECEIVED",
  "task-started": "STARTED",
  "task-succeeded": "SUCCESS",
  "task-failed": "FAILURE",
  "task-retried": "RETRY",
  "task-revoked": "REVOKED",
  "task-rejected": "REJECTED",
} as const satisfies Record<string, TaskState>;
export type TaskEventType = keyof typeof TASK_EVENT_STATE;

export const WORKER_EVENT_TYPES = ["worker-online", "worker-heartbeat", "worker-offline"] as const;
export type WorkerEventType = (typeof WORKER_EVENT_TYPES)[number];

export function isTaskEventType(t: string): t is TaskEventType {
  return Object.hasOwn(TASK_EVENT_STATE, t);
}
export function isWorkerEventType(t: string): t is WorkerEventType {
  return (WORKER_EVENT_TYPES as readonly string[]).includes(t);
}

/**
 * The order in which one task's states may replace each other. Events arrive
 * out of order (several workers, batching, clock skew, replays), so the state
 * is not "the last event" but the greatest by this key, which makes merging
 * order-independent (a join: merge(a, b) = merge(b, a), merge(a, a) = a):
 *
 *  1. `PENDING` (task-sent) is the least: the producer's clock is not the
 *     worker's, and a retry re-sends the task while the worker still reports.
 *  2. Worker-side states that are not final (RECEIVED, STARTED, RETRY,
 *     REJECTED) follow the sender's timestamp. A retry is received *before*
 *     the worker reports `task-retried` (checked on real Celery 5.2), so
 *     precedence alone would get retries wrong; time order gets them right.
 *  3. Final states (Celery's READY_STATES) beat everything, ordered by
 *     Celery's PRECEDENCE (SUCCESS > FAILURE > REVOKED) and then time: a
 *     finished task never moves back.
 *
 * Keys stay below 2^53 so they are exact as JS numbers and PostgreSQL bigints.
 */
export function stateKey(state: TaskState, timestamp: number): number {
  const ms = Math.max(0, Math.min(Math.round(timestamp * 1000), 9_999_999_999_999));
  switch (state) {
    case "PENDING":
      return ms;
    case "RECEIVED":
    case "REJECTED":
    case "STARTED":
    case "RETRY":
      // ×10 leaves room for a tie-break at the same millisecond, in life-cycle order.
      return 1e14 + ms * 10 + NON_READY_TIE[state];
    case "REVOKED":
      return 3e14 + ms;
    case "FAILURE":
      return 3e14 + 1e13 + ms;
    case "SUCCESS":
      return 3e14 + 2e13 + ms;
  }
}
const NON_READY_TIE = { RECEIVED: 1, STARTED: 2, REJECTED: 3, RETRY: 4 } as const;
