/**
 * Task lookups for the API, pages and Slack. Every list is bounded and pages
 * newest first on (first_seen_at, id), which each filter's index serves.
 */
import { type AnyColumn, type SQL, and, desc, eq, gte, ilike, inArray, lte, or, sql } from "drizzle-orm";
import type { TaskState } from "../../celery/states.ts";
import type { Database } from "../database.ts";
import { events, tasks } from "../schema/index.ts";
import { type TaskCursor, encodeCursor } from "./cursor.ts";
import { DESCRIPTIVE_FIELDS, type DescriptiveField } from "../../state/task-patch.ts";
import { sourceOf, withShared } from "../shared-fields.ts";

export type TaskRow = typeof tasks.$inferSelect;
/** A stored event, with where it came from (kept as a bit of fields_in_task, store/shared-fields.ts). */
export type EventRecord = typeof events.$inferSelect & { source: "events" | "result-backend" };

/** Columns a reader needs: the merge keys stay inside the store. */
const TASK_COLUMNS = {
  id: tasks.id,
  name: tasks.name,
  state: tasks.state,
  worker: tasks.worker,
  queue: tasks.queue,
  routingKey: tasks.routingKey,
  exchange: tasks.exchange,
  args: tasks.args,
  kwargs: tasks.kwargs,
  result: tasks.result,
  exception: tasks.exception,
  traceback: tasks.traceback,
  retries: tasks.retries,
  rootId: tasks.rootId,
  parentId: tasks.parentId,
  eta: tasks.eta,
  expires: tasks.expires,
  runtime: tasks.runtime,
  sentAt: tasks.sentAt,
  receivedAt: tasks.receivedAt,
  startedAt: tasks.startedAt,
  finishedAt: tasks.finishedAt,
  firstSeenAt: tasks.firstSeenAt,
  lastEventAt: tasks.lastEventAt,
  expired: tasks.expired,
  broker: tasks.broker,
};
export type Task = Pick<TaskRow, keyof typeof TASK_COLUMNS> & { state: TaskState };

/** How much of each large field a list carries; one task's own answer has them whole. */
export const LIST_PREVIEW_CHARS = 1000;

/**
 * A large text column as a list shows it: its first LIST_PREVIEW_CHARS
 * characters, and `…` when there was more. Each field may hold ~64 KB, and a
 * list of 500 tasks must not carry 500 tracebacks whole.
 */
const preview = (column: SQL.Aliased | AnyColumn) =>
  sql<string | null>`case when length(${column}) > ${LIST_PREVIEW_CHARS} then left(${column}, ${LIST_PREVIEW_CHARS}) || '…' else ${column} end`;

/** The columns of a list: the large ones as previews. */
function listColumns<C extends Record<keyof typeof TASK_COLUMNS, AnyColumn>>(c: C) {
  return {
    ...c,
    args: preview(c.args),
    kwargs: preview(c.kwargs),
    result: preview(c.result),
    exception: preview(c.exception),
    traceback: preview(c.traceback),
  };
}

/** At most this many events are returned for one task (a flood cannot blow up a page). */
export const MAX_EVENTS_PER_TASK = 1000;

export async function getTask(database: Database, id: string): Promise<Task | null> {
  const rows = await database.db.select(TASK_COLUMNS).from(tasks).where(eq(tasks.id, id)).limit(1);
  return (rows[0] as Task | undefined) ?? null;
}

/** The tasks' events in time order, each with every field it came with (those its task's row holds put back). */
export async function getTaskEvents(database: Database, taskIds: readonly string[]): Promise<EventRecord[]> {
  if (taskIds.length === 0) return [];
  const rows = await database.db
    .select()
    .from(events)
    .where(inArray(events.taskId, [...taskIds]))
    .orderBy(events.taskId, events.timestamp, events.key)
    .limit(MAX_EVENTS_PER_TASK * taskIds.length);
  const read: EventRecord[] = rows.map((e) => {
    const { source, mask } = sourceOf(e.fieldsInTask);
    return { ...e, source, fieldsInTask: mask };
  });
  const sharing = [...new Set(read.filter((e) => e.fieldsInTask !== 0).map((e) => e.taskId))];
  if (sharing.length === 0) return read;
  const descriptive = Object.fromEntries(DESCRIPTIVE_FIELDS.map((f) => [f, tasks[f]])) as { [F in DescriptiveField]: (typeof tasks)[F] };
  const owners = await database.db
    .select({ id: tasks.id, ...descriptive })
    .from(tasks)
    .where(inArray(tasks.id, sharing));
  const byId = new Map(owners.map((t) => [t.id, t]));
  return read.map((e) => (e.fieldsInTask === 0 ? e : { ...e, fields: withShared(e.fields, e.fieldsInTask, byId.get(e.taskId)) }));
}

/**
 * Newest first, in the order of the tasks_*_recent_idx indexes. drizzle
 * creates `.desc()` index columns as DESC NULLS LAST, while a plain ORDER BY
 * … DESC means NULLS FIRST: without saying NULLS LAST here, PostgreSQL
 * cannot walk the index and sorts the whole table instead (0.1 ms against
 * 360 ms at a million tasks).
 */
export const NEWEST_FIRST = [sql`${tasks.firstSeenAt} desc nulls last`, sql`${tasks.id} desc nulls last`] as const;

export interface TaskFilters {
  name?: string;
  state?: TaskState;
  worker?: string;
  queue?: string;
  /** `expired`: tasks a worker discarded unrun because their `expires` had passed (tasks_expired_recent_idx). */
  reason?: "expired";
  /** A broker's name (BROKERS). */
  broker?: string;
  /** Searches id, name, args, kwargs and exception. */
  q?: string;
  since?: Date;
  until?: Date;
  limit: number;
  cursor?: TaskCursor | null;
  /** Tasks a text search looks at per request (SEARCH_WINDOW; smaller in tests). */
  searchWindow?: number;
}

/**
 * A text search (`q`) looks at this many tasks per request, newest first, and
 * then hands back a cursor to go on: text no task contains would otherwise
 * read every task (seconds at ten million, while the collector writes).
 */
export const SEARCH_WINDOW = 50_000;

/** A task's place in the newest-first order, as the cursor carries it. */
const CURSOR_AT = sql<string>`to_char(${tasks.firstSeenAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export interface TaskPage {
  tasks: Task[];
  nextCursor: string | null;
  /**
   * Set when a text search stopped at SEARCH_WINDOW tasks: the page may hold
   * fewer matches than asked (even none), and `nextCursor` goes on searching.
   */
  searchedWindow?: number;
}

export async function listTasks(database: Database, f: TaskFilters): Promise<TaskPage> {
  const where: (SQL | undefined)[] = [];
  if (f.name) where.push(eq(tasks.name, f.name));
  if (f.state) where.push(eq(tasks.state, f.state));
  if (f.worker) where.push(eq(tasks.worker, f.worker));
  if (f.queue) where.push(eq(tasks.queue, f.queue));
  if (f.reason === "expired") where.push(eq(tasks.expired, true));
  if (f.broker) where.push(eq(tasks.broker, f.broker));
  if (f.since) where.push(gte(tasks.firstSeenAt, f.since));
  if (f.until) where.push(lte(tasks.firstSeenAt, f.until));
  if (f.cursor) {
    where.push(sql`(${tasks.firstSeenAt}, ${tasks.id}) < (${f.cursor.at}::timestamptz, ${f.cursor.id})`);
  }
  if (f.q) return searchTasks(database, where, f.q, f.limit, f.searchWindow ?? SEARCH_WINDOW);
  const rows = await database.db
    .select({ ...listColumns(TASK_COLUMNS), at: CURSOR_AT })
    .from(tasks)
    .where(and(...where))
    .orderBy(...NEWEST_FIRST)
    .limit(f.limit + 1);
  return pageOf(rows, f.limit);
}

/**
 * The newest `searchWindow` tasks that pass the other filters (a walk of
 * their index), then the text match on those alone.
 */
async function searchTasks(database: Database, where: (SQL | undefined)[], q: string, limit: number, searchWindow: number): Promise<TaskPage> {
  const window = database.db
    .select({ ...TASK_COLUMNS, at: CURSOR_AT.as("at") })
    .from(tasks)
    .where(and(...where))
    .orderBy(...NEWEST_FIRST)
    .limit(searchWindow)
    .as("window");
  const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  // Matched on whole fields, answered with previews.
  const { at, ...columns } = window._.selectedFields;
  const rows = await database.db
    .select({ ...listColumns(columns), at })
    .from(window)
    .where(or(eq(window.id, q), ilike(window.name, like), ilike(window.args, like), ilike(window.kwargs, like), ilike(window.exception, like)))
    .orderBy(sql`${window.firstSeenAt} desc nulls last`, sql`${window.id} desc nulls last`)
    .limit(limit + 1);
  if (rows.length > limit) return pageOf(rows, limit);
  // Fewer matches than a page: go on from the window's last task, if it was full.
  const [edge] = await database.db
    .select({ id: tasks.id, at: CURSOR_AT })
    .from(tasks)
    .where(and(...where))
    .orderBy(...NEWEST_FIRST)
    .limit(1)
    .offset(searchWindow - 1);
  return { ...pageOf(rows, limit), nextCursor: edge ? encodeCursor(edge) : null, searchedWindow: edge ? searchWindow : undefined };
}

/** A page of `limit` rows (one more was asked for, to know whether there are more). */
function pageOf<Row extends { at: string; id: string }>(rows: Row[], limit: number): TaskPage {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    tasks: page.map(({ at: _, ...t }) => t as unknown as Task),
    nextCursor: rows.length > limit && last ? encodeCursor({ at: last.at, id: last.id }) : null,
  };
}

/** Tasks first seen in one minute, by state now: the overview's chart. */
export interface MinuteCounts {
  /** Start of the minute, unix seconds. */
  minute: number;
  byState: Record<string, number>;
}

/**
 * Per-minute counts by state of the tasks first seen since `since` (a range
 * on tasks_recent_idx), and the newest task's arrival: the overview's
 * throughput and the event stream's pulse.
 */
export async function tasksPerMinute(database: Database, since: Date): Promise<{ minutes: MinuteCounts[]; lastTaskAt: number | null }> {
  const rows = await database.rows<{ minute: number; state: string; n: number }>(sql`
    select extract(epoch from date_trunc('minute', first_seen_at))::float8 as minute, state, count(*)::int as n
    from tasks where first_seen_at >= ${since.toISOString()}::timestamptz
    group by 1, 2 order by 1`);
  const [last] = await database.rows<{ t: number | null }>(
    sql`select extract(epoch from first_seen_at)::float8 as t from tasks order by first_seen_at desc nulls last, id desc nulls last limit 1`,
  );
  const byMinute = new Map<number, Record<string, number>>();
  for (const r of rows) {
    const m = Number(r.minute);
    const counts = byMinute.get(m) ?? {};
    counts[r.state] = Number(r.n);
    byMinute.set(m, counts);
  }
  return {
    minutes: [...byMinute].map(([minute, byState]) => ({ minute, byState })),
    lastTaskAt: last?.t === null || last?.t === undefined ? null : Number(last.t),
  };
}

/** Ids of a worker's tasks in these states (a dead worker's RECEIVED and STARTED: what it held). */
export async function tasksHeldBy(database: Database, worker: string, states: readonly TaskState[], limit = 10_000): Promise<string[]> {
  const rows = await database.db
    .select({ id: tasks.id })
    .from(tasks)
    .where(and(eq(tasks.worker, worker), inArray(tasks.state, [...states])))
    .limit(limit);
  return rows.map((r) => r.id);
}
