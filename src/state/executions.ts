/**
 * One entry per time a worker ran a task, derived from the task's stored
 * events. Two or more executions at the same `retries` count is a duplicate
 * execution (the visibility-timeout redelivery, or a message restored from a
 * dead worker while it was still running).
 */
import type { TaskState } from "../celery/states.ts";
import { TASK_EVENT_STATE, isTaskEventType } from "../celery/states.ts";

export interface ExecutionEvent {
  type: string;
  hostname: string;
  timestamp: number;
  source: string;
  fields: Record<string, unknown>;
}

export interface Execution {
  worker: string;
  retries: number | null;
  receivedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  state: TaskState;
}

export function executionsFromEvents(events: readonly ExecutionEvent[]): Execution[] {
  const fromStream = events.filter((e) => e.source === "events" && e.type !== "task-sent" && e.hostname !== "");
  const streamWorkers = new Set(fromStream.map((e) => e.hostname));
  // Where task events are off, or a worker ran the task before its events
  // were switched on, the result backend still tells who ran it.
  const usable = [
    ...fromStream,
    ...events.filter((e) => e.source !== "events" && e.type !== "task-sent" && e.hostname !== "" && !streamWorkers.has(e.hostname)),
  ];
  const byWorker = new Map<string, ExecutionEvent[]>();
  for (const e of usable) {
    if (!isTaskEventType(e.type)) continue;
    const list = byWorker.get(e.hostname) ?? [];
    list.push(e);
    byWorker.set(e.hostname, list);
  }
  const out: Execution[] = [];
  for (const [worker, list] of byWorker) {
    list.sort((a, b) => a.timestamp - b.timestamp || order(a.type) - order(b.type));
    const runs: Execution[] = [];
    let retries: number | null = null;
    const open = (state: TaskState): Execution => {
      const x: Execution = { worker, retries, receivedAt: null, startedAt: null, finishedAt: null, state };
      runs.push(x);
      return x;
    };
    const lastRun = (match: (x: Execution) => boolean) => runs.findLast(match);
    for (const e of list) {
      const state = TASK_EVENT_STATE[e.type as keyof typeof TASK_EVENT_STATE];
      // The result backend's records carry the retry count (result_extended).
      if (e.source !== "events" && typeof e.fields.retries === "number") retries = e.fields.retries;
      if (e.type === "task-received") {
        retries = typeof e.fields.retries === "number" ? e.fields.retries : retries;
        open(state).receivedAt = e.timestamp;
      } else if (e.type === "task-started") {
        const open_ = lastRun((r) => r.startedAt === null && r.finishedAt === null);
        // The result backend's STARTED is dated when Crisper received it, which
        // can be after that run's end: it belongs to the run that ended.
        const ended = e.source !== "events" ? lastRun((r) => r.startedAt === null && r.retries === retries) : undefined;
        const x = open_ ?? ended ?? open(state);
        if (x === ended) continue;
        x.startedAt = e.timestamp;
        x.state = state;
      } else {
        // A retry is received before the worker reports task-retried for the
        // run that asked for it: the end belongs to the run that started.
        const x =
          lastRun((r) => r.startedAt !== null && r.finishedAt === null) ??
          lastRun((r) => r.finishedAt === null) ??
          open(state);
        x.finishedAt = e.timestamp;
        x.state = state;
      }
    }
    out.push(...runs);
  }
  return out.sort((a, b) => at(a) - at(b));
}

const LIFECYCLE = ["task-received", "task-started", "task-retried", "task-rejected", "task-failed", "task-revoked", "task-succeeded"];
function order(type: string): number {
  return LIFECYCLE.indexOf(type);
}
function at(x: Execution): number {
  return x.receivedAt ?? x.startedAt ?? x.finishedAt ?? 0;
}

/**
 * Executions that ran the task more than once at one retry count. A run
 * counts if it started or finished (a worker whose task-started was missed
 * still reports the end). A run whose retry count is unknown (its
 * task-received was missed) is placed only when that is unambiguous: the
 * task never retried, so every run was attempt 0. A task that retried is
 * never guessed at, so retries are never taken for duplicates.
 */
export function duplicateRuns(executions: readonly Execution[]): { retries: number | null; runs: Execution[] } | null {
  const ran = executions.filter((x) => x.startedAt !== null || x.finishedAt !== null);
  const retried = ran.some((x) => x.state === "RETRY" || (x.retries ?? 0) > 0);
  const known = new Set(ran.map((x) => x.retries).filter((r): r is number => r !== null));
  const only = known.size === 1 ? ([...known][0] as number) : known.size === 0 ? 0 : null;
  const placed = retried ? ran.filter((x) => x.retries !== null) : ran.filter((x) => x.retries !== null || only !== null);
  const byRetries = Map.groupBy(placed, (x) => x.retries ?? only);
  for (const [retries, runs] of byRetries) if (runs.length > 1) return { retries, runs };
  return null;
}

/** Executions from events as the store returns them (timestamps as Dates). */
export function executionsFromStored(events: readonly (Omit<ExecutionEvent, "timestamp"> & { timestamp: Date })[]): Execution[] {
  return executionsFromEvents(events.map((e) => ({ ...e, timestamp: e.timestamp.getTime() / 1000 })));
}
