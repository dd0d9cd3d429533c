/** The reads and writes the detectors need, each bounded and index-backed. */
import { FROM_RESULT_BACKEND } from "../shared-fields.ts";
import { and, desc, eq, gte, inArray, isNotNull, sql } from "drizzle-orm";
import type { Database } from "../database.ts";
import { AT_WORKER_STATES, sqlStateList, UNFINISHED_STATES } from "../../celery/states.ts";
import { NEWEST_FIRST } from "./tasks.ts";
import { unixSeconds } from "../schema/columns.ts";
import { queueSamples, schedules, tasks, workers } from "../schema/index.ts";

/** RECEIVED/STARTED tasks (tasks_unfinished_idx), oldest first, bounded. */
/** `broker`: only that broker's tasks (each broker's detector judges its own). */
export async function unfinishedTasks(database: Database, limit = 20_000, broker?: string) {
  const rows = await database.db
    .select({
      id: tasks.id,
      name: tasks.name,
      state: tasks.state,
      worker: tasks.worker,
      receivedAt: tasks.receivedAt,
      startedAt: tasks.startedAt,
      lastEventAt: tasks.lastEventAt,
    })
    .from(tasks)
    .where(and(sql`${tasks.state} in (${sql.raw(sqlStateList(AT_WORKER_STATES))})`, broker ? eq(tasks.broker, broker) : undefined))
    .orderBy(tasks.startedAt)
    .limit(limit);
  return rows.map((r) => ({ ...r, receivedAt: unixSeconds(r.receivedAt), startedAt: unixSeconds(r.startedAt), lastEventAt: r.lastEventAt.getTime() / 1000 }));
}

/** Tasks not finished (including PENDING/RETRY) last heard of in a window: what a stream gap may have hidden. */
export async function unfinishedSince(database: Database, since: Date, limit = 5000, broker?: string): Promise<string[]> {
  const rows = await database.db
    .select({ id: tasks.id })
    .from(tasks)
    .where(and(sql`${tasks.state} in (${sql.raw(sqlStateList(UNFINISHED_STATES))})`, gte(tasks.lastEventAt, since), broker ? eq(tasks.broker, broker) : undefined))
    .limit(limit);
  return rows.map((r) => r.id);
}

/** Runtimes of a task name's latest successes (tasks_name_recent_idx). */
export async function recentRuntimes(database: Database, name: string, limit = 200): Promise<number[]> {
  const rows = await database.db
    .select({ runtime: tasks.runtime })
    .from(tasks)
    .where(and(eq(tasks.name, name), eq(tasks.state, "SUCCESS"), isNotNull(tasks.runtime)))
    .orderBy(...NEWEST_FIRST)
    .limit(limit);
  return rows.map((r) => r.runtime as number);
}

export async function taskNames(database: Database, ids: readonly string[]): Promise<Map<string, string | null>> {
  if (ids.length === 0) return new Map();
  const rows = await database.db.select({ id: tasks.id, name: tasks.name }).from(tasks).where(inArray(tasks.id, [...ids]));
  return new Map(rows.map((r) => [r.id, r.name]));
}

export async function taskStates(database: Database, ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await database.db.select({ id: tasks.id, state: tasks.state }).from(tasks).where(inArray(tasks.id, [...ids]));
  return new Map(rows.map((r) => [r.id, r.state]));
}

export async function queueDepthHistory(database: Database, since: Date, broker?: string) {
  const rows = await database.db
    .select({ queue: queueSamples.queue, at: queueSamples.sampledAt, depth: queueSamples.depth })
    .from(queueSamples)
    .where(and(gte(queueSamples.sampledAt, since), broker ? eq(queueSamples.broker, broker) : undefined))
    .limit(200_000);
  const out = new Map<string, { at: number; depth: number }[]>();
  for (const r of rows) {
    const list = out.get(r.queue) ?? [];
    list.push({ at: r.at.getTime() / 1000, depth: r.depth });
    out.set(r.queue, list);
  }
  return out;
}

/** What a live worker told us it holds (`reserved`, `active`). */
export async function recordInspection(database: Database, hostname: string, reserved: unknown[], active: unknown[], at: Date, broker = "default") {
  await database.db
    .update(workers)
    .set({ reserved: reserved.length, reservedTasks: reserved.slice(0, 200), activeTasks: active.slice(0, 200), inspectedAt: at })
    .where(and(eq(workers.broker, broker), eq(workers.hostname, hostname)));
}

export type ScheduleRow = typeof schedules.$inferSelect;

export async function listSchedules(database: Database): Promise<ScheduleRow[]> {
  return database.db.select().from(schedules).orderBy(schedules.name).limit(5000);
}

export async function upsertSchedule(database: Database, row: ScheduleRow) {
  await database.db
    .insert(schedules)
    .values(row)
    .onConflictDoUpdate({
      target: schedules.name,
      set: {
        task: row.task,
        expectedIntervalS: row.expectedIntervalS,
        cron: row.cron,
        source: row.source,
        // Two collectors may both write: the latest arrival wins.
        lastSeenAt: sql`greatest(${schedules.lastSeenAt}, excluded.last_seen_at)`,
        nextDueAt: row.nextDueAt,
        status: row.status,
        updatedAt: row.updatedAt,
      },
    });
}

/**
 * Of these task ids, those that may have run more than once: two task-started
 * events, or signs of running from two different workers (either stream).
 * The events index is on task_id (events_task_idx), so this is index lookups.
 */
export async function startedMoreThanOnce(database: Database, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await database.rows<{ task_id: string }>(sql`
    select task_id from events
    -- = any(array(...)), not in (select ...): the planner then walks the
    -- primary key per id instead of joining against the whole table.
    where task_id = any(array(select json_array_elements_text(${JSON.stringify(ids)}::text::json)))
      and type in ('task-started', 'task-succeeded', 'task-failed', 'task-retried') and hostname <> ''
    group by task_id
    having count(*) filter (where type = 'task-started' and fields_in_task & ${FROM_RESULT_BACKEND} = 0) > 1 or count(distinct hostname) > 1`);
  return rows.map((r) => r.task_id);
}

/** Stores a schedule declared through the API; the detector takes it from there. */
export async function declareSchedule(database: Database, s: { name: string; task: string; expectedIntervalS: number | null; cron: string | null }, now: Date) {
  const rows = await database.db
    .insert(schedules)
    .values({ ...s, source: "api", lastSeenAt: null, nextDueAt: null, status: "ok", updatedAt: now })
    .onConflictDoUpdate({
      target: schedules.name,
      set: { task: s.task, expectedIntervalS: s.expectedIntervalS, cron: s.cron, source: "api", updatedAt: now },
    })
    .returning();
  return rows[0] as ScheduleRow;
}

export async function deleteSchedule(database: Database, name: string): Promise<boolean> {
  const rows = await database.db.delete(schedules).where(eq(schedules.name, name)).returning({ name: schedules.name });
  return rows.length > 0;
}
