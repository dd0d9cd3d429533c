/** Tasks that expired in the queue (tasks.expired), by task name: what the tasks_expired check reads. */
import { and, eq, gte, isNull, sql } from "drizzle-orm";
import type { Database } from "../database.ts";
import { tasks } from "../schema/index.ts";

/** Expirations of one task name (null: tasks whose name was never seen) in a window. */
export interface ExpiredGroup {
  name: string | null;
  count: number;
  /** The queues they were sent to (null: unknown), at most a few. */
  queues: (string | null)[];
  /** When the first and the last of them were discarded, unix seconds (the worker's clock). */
  firstAt: number;
  lastAt: number;
}

const MAX_NAMES = 500;
const MAX_QUEUES = 10;

/**
 * Expired tasks discarded since `since`, grouped by name; only `name` when
 * given (undefined: every name). Served by tasks_expired_finished_idx, a partial
 * index as small as the number of expired tasks.
 */
export async function expiredSince(database: Database, since: Date, name?: string | null): Promise<ExpiredGroup[]> {
  const where = [eq(tasks.expired, true), gte(tasks.finishedAt, since)];
  if (name !== undefined) where.push(name === null ? isNull(tasks.name) : eq(tasks.name, name));
  const rows = await database.db
    .select({
      name: tasks.name,
      count: sql<number>`count(*)::int`,
      // As JSON: both drivers parse it, while a text[] from a raw fragment comes back from postgres.js as "{a,b}".
      queues: sql<(string | null)[]>`to_jsonb((array_agg(distinct ${tasks.queue}))[1:${sql.raw(String(MAX_QUEUES))}])`,
      firstAt: sql<number>`extract(epoch from min(${tasks.finishedAt}))::float8`,
      lastAt: sql<number>`extract(epoch from max(${tasks.finishedAt}))::float8`,
    })
    .from(tasks)
    .where(and(...where))
    .groupBy(tasks.name)
    .limit(MAX_NAMES);
  return rows.map((r) => ({ ...r, count: Number(r.count), firstAt: Number(r.firstAt), lastAt: Number(r.lastAt) }));
}
