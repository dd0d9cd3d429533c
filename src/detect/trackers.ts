/**
 * What the detector remembers between passes, in memory. The collector feeds
 * it every event it commits (`observe`), so duplicate starts and arrivals are
 * seen as they happen rather than searched for in the store. Every map is
 * bounded: task names and hostnames come from the outside.
 */
import type { CeleryEvent } from "../celery/event.ts";

const MAX_ARRIVALS_PER_NAME = 20;
const MAX_TRACKED_NAMES = 2000;
const MAX_TRACKED_HOSTS = 2000;
/** Task ids awaiting the duplicate check; a pass drains them all. */
const MAX_PENDING_STARTS = 200_000;
const RAN_TYPES = new Set(["task-started", "task-succeeded", "task-failed", "task-retried"]);

/** A live worker's `processed` count, watched since a moment with no task event from it. */
export interface ActivityWindow {
  processedFrom: number;
  watchedSince: number;
}

export interface Trackers {
  observe(events: readonly CeleryEvent[]): void;
  /** Removes and returns up to `max` of the task ids a worker was seen running (duplicate_execution). */
  takeStarted(max: number): string[];
  /** Arrival times per task name: task-sent, or the first task-received where producers send none (beat_missed). */
  readonly arrivals: ReadonlyMap<string, readonly number[]>;
  /** When a task event last came from this worker (events_disabled). */
  lastTaskEventAt(hostname: string): number | null;
  /**
   * The worker's activity window (events_disabled), started again whenever it
   * is new, its `processed` went back (a restart), or task events came from it.
   */
  activityWindow(hostname: string, processed: number, now: number): ActivityWindow;
  /** Stops watching a worker's activity (dead, silent, or without `processed`). */
  forgetActivity(hostname: string): void;
  /** What the event_gap check knows of this process's stream gaps. */
  readonly gapWatch: GapWatch;
}

/** The event_gap check's memory (checks/event-gap.ts); gaps are named by their start time. */
export interface GapWatch {
  /** The check's first pass in this process; null before it. */
  startedAt: number | null;
  /** Gaps counted in the event_gap alert. */
  counted: Set<number>;
  /** Gaps whose window was reconciled from the result backend. */
  reconciled: Set<number>;
}

export function createTrackers(): Trackers {
  const startedIds = new Set<string>();
  const arrivals = new Map<string, number[]>();
  const namesWithSent = new Set<string>();
  const lastTaskEventAt = new Map<string, number>();
  const activity = new Map<string, ActivityWindow>();

  function observe(events: readonly CeleryEvent[]) {
    for (const e of events) {
      if (!e.uuid) continue;
      if (e.source === "events" && e.hostname && e.type !== "task-sent") {
        if (lastTaskEventAt.size < MAX_TRACKED_HOSTS || lastTaskEventAt.has(e.hostname)) lastTaskEventAt.set(e.hostname, e.localReceived);
      }
      // Any sign that a worker ran it: a second run may show only some of these.
      if (RAN_TYPES.has(e.type) && e.hostname && startedIds.size < MAX_PENDING_STARTS) startedIds.add(e.uuid);
      const name = typeof e.fields.name === "string" ? e.fields.name : null;
      if (!name) continue;
      // One arrival per sent task: task-sent if producers send it, else the
      // first delivery (retries are not new arrivals).
      const isSent = e.type === "task-sent";
      if (isSent && namesWithSent.size < MAX_TRACKED_NAMES) namesWithSent.add(name);
      const firstDelivery = e.type === "task-received" && !namesWithSent.has(name) && (e.fields.retries ?? 0) === 0;
      if (!(isSent && (e.fields.retries ?? 0) === 0) && !firstDelivery) continue;
      if (e.fields.parent_id) continue; // a subtask, sent by another task, is not Beat's
      let list = arrivals.get(name);
      if (!list) {
        if (arrivals.size >= MAX_TRACKED_NAMES) continue;
        list = [];
        arrivals.set(name, list);
      }
      list.push(e.localReceived);
      if (list.length > MAX_ARRIVALS_PER_NAME) list.shift();
    }
  }

  return {
    observe,
    takeStarted(max) {
      const chunk = [...startedIds].slice(0, max);
      for (const id of chunk) startedIds.delete(id);
      return chunk;
    },
    arrivals,
    lastTaskEventAt: (hostname) => lastTaskEventAt.get(hostname) ?? null,
    activityWindow(hostname, processed, now) {
      let a = activity.get(hostname);
      const seen = lastTaskEventAt.get(hostname) ?? null;
      // Restart the window whenever task events are seen: the worker is fine.
      if (!a || processed < a.processedFrom || (seen !== null && seen > a.watchedSince)) {
        a = { processedFrom: processed, watchedSince: now };
        if (activity.size < MAX_TRACKED_HOSTS) activity.set(hostname, a);
      }
      return a;
    },
    forgetActivity: (hostname) => void activity.delete(hostname),
    gapWatch: { startedAt: null, counted: new Set<number>(), reconciled: new Set<number>() },
  };
}
