/**
 * tasks_expired: workers took tasks from the queue only after their
 * `expires` had passed, and discarded them unrun (Celery sends `task-revoked`
 * with `expired: true`, and nothing else: no task-received, no task-started).
 * The seed's story: the pool was saturated, the tasks expired in the queue.
 *
 * One alert per task name while its tasks keep expiring, counting them since
 * the first of the episode; it resolves once none has expired for
 * TASKS_EXPIRED_QUIET_S. The episode's start lives in the alert's details, so
 * a restart carries on counting.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { openAlerts } from "../../alerts/store.ts";
import { type ExpiredGroup, expiredSince } from "../../store/queries/expired.ts";
import type { Check } from "../pass.ts";
import { iso } from "./summary.ts";

/** The subject for expired tasks whose name Crisper never saw (no task-sent, no extended result). */
export const UNNAMED_TASKS = "(unnamed tasks)";

export function tasksExpiredAlert(g: ExpiredGroup, quietS: number): AlertSpec {
  const name = g.name ?? UNNAMED_TASKS;
  const queues = g.queues.filter((q): q is string => q !== null);
  const where = queues.length === 0 ? "in the queue" : queues.length === 1 ? `in queue ${queues[0]}` : `in queues ${queues.join(", ")}`;
  const what = g.count === 1 ? `1 task ${name} expired` : `${g.count} tasks ${name} expired`;
  return {
    kind: "tasks_expired",
    subject: name,
    summary:
      `${what} ${where} before a worker took ${g.count === 1 ? "it" : "them"} (since ${iso(g.firstAt)}): ` +
      `the workers discarded ${g.count === 1 ? "it" : "them"} unrun. Workers are not keeping up, or the expires is too short. ` +
      `Resolves after ${quietS} s without another.`,
    details: {
      task: g.name,
      count: g.count,
      queues,
      since: iso(g.firstAt),
      last_expired_at: iso(g.lastAt),
      quiet_s: quietS,
    },
  };
}

/**
 * The alerts that hold: a name whose tasks expired within the quiet period.
 * `episodes` has, for a name whose alert is open, its expirations since the
 * episode began (the count the alert carries on).
 */
export function detectTasksExpired(recent: readonly ExpiredGroup[], episodes: ReadonlyMap<string, ExpiredGroup>, now: number, quietS: number): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const g of recent) {
    if (g.count === 0 || now - g.lastAt > quietS) continue;
    out.push(tasksExpiredAlert(episodes.get(g.name ?? UNNAMED_TASKS) ?? g, quietS));
  }
  return out;
}

export const checkTasksExpired: Check = async (pass) => {
  const { database, now } = pass;
  const quietS = pass.config.tasksExpiredQuietS;
  const recent = await expiredSince(database, new Date((now - quietS) * 1000));
  const holding = new Set(recent.map((g) => g.name ?? UNNAMED_TASKS));
  const episodes = new Map<string, ExpiredGroup>();
  for (const a of await openAlerts(database, "tasks_expired")) {
    if (!holding.has(a.subject)) continue;
    const since = typeof a.details.since === "string" ? Date.parse(a.details.since) : NaN;
    if (Number.isNaN(since)) continue;
    const name = a.subject === UNNAMED_TASKS ? null : a.subject;
    const [g] = await expiredSince(database, new Date(since), name);
    if (g) episodes.set(a.subject, g);
  }
  await pass.sync("tasks_expired", detectTasksExpired(recent, episodes, now, quietS));
};
