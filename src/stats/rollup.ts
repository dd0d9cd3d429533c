/**
 * Rebuilds the per-minute statistics (task_stats) from the tasks themselves.
 *
 * The writer marks the buckets its tasks leave and enter (marks.ts); a pass
 * here takes the marks and recomputes each marked bucket whole from the
 * tasks table — a replace, never an increment — so an event delivered twice,
 * a replay, a retried batch or a second collector cannot count anything
 * twice: the bucket is whatever the tasks say. Running it again changes
 * nothing. The retention pass runs it before deleting tasks, so the minutes
 * it prunes keep their statistics.
 */
import { sql } from "drizzle-orm";
import { type Database, rowsOf } from "../store/database.ts";
import { binSql } from "./histogram.ts";
import { EXPIRED, HAS_OUTCOME, OUTCOME_AT, RETRIES, RUNTIME_S, WAIT_S } from "./outcome.ts";

/** Marks taken per transaction: a pass after an outage works through the backlog in steps this size. */
const MARKS_PER_STEP = 500;

/**
 * Takes up to $1 marks, oldest minute first. Marks a writer holds (its
 * transaction is not committed yet) are skipped and left for the next pass.
 */
const CLAIM = `delete from task_stats_dirty d
  where (d.minute, d.name, d.queue) in (
    select minute, name, queue from task_stats_dirty order by minute, name, queue limit $1 for update skip locked)
  returning extract(epoch from d.minute)::float8 as minute, d.name, d.queue`;

/** Rebuilds the buckets in $1 (JSON: [{minute (unix seconds), name, queue}]) from the tasks. */
const REBUILD = `with claimed as (
    select to_timestamp(minute) as minute, name, queue from json_to_recordset($1::text::json) as x(minute float8, name text, queue text)
  ),
  minutes as (select distinct minute from claimed),
  candidates as (
    -- Only the finished_at range here, so the plan is tasks_finished_idx even
    -- before the table is analyzed (not an index over every finished task).
    select t.* from minutes m join tasks t
      on t.finished_at >= m.minute and t.finished_at < m.minute + interval '1 minute'
    union all
    select t.* from tasks t where t.state = 'RETRY' and date_trunc('minute', t.last_event_at) in (select minute from minutes)
  ),
  counted as (
    select c.minute, c.name, c.queue, t.state,
      ${RETRIES} as retries,
      case when t.state = 'REVOKED' then ${EXPIRED} else false end as expired,
      ${RUNTIME_S} as runtime_s,
      ${WAIT_S} as wait_s
    from candidates t
    join claimed c on c.minute = date_trunc('minute', ${OUTCOME_AT}) and c.name = t.name and c.queue = coalesce(t.queue, '')
    where ${HAS_OUTCOME}
  ),
  totals as (
    select minute, name, queue,
      (count(*) filter (where state = 'SUCCESS'))::int as succeeded,
      (count(*) filter (where state = 'FAILURE'))::int as failed,
      sum(retries)::int as retried,
      (count(*) filter (where state = 'REVOKED' and not expired))::int as revoked,
      (count(*) filter (where expired))::int as expired
    from counted group by minute, name, queue
  ),
  -- Materialized: used once, PostgreSQL would otherwise inline them and
  -- aggregate them again for every bucket it joins (seconds, measured).
  runtime as materialized (
    select minute, name, queue, array_agg(bin order by bin) as bins, array_agg(n order by bin) as counts
    from (select minute, name, queue, (${binSql("runtime_s")})::smallint as bin, count(*)::int as n
      from counted where runtime_s is not null group by 1, 2, 3, 4) b
    group by minute, name, queue
  ),
  wait as materialized (
    select minute, name, queue, array_agg(bin order by bin) as bins, array_agg(n order by bin) as counts
    from (select minute, name, queue, (${binSql("wait_s")})::smallint as bin, count(*)::int as n
      from counted where wait_s is not null group by 1, 2, 3, 4) b
    group by minute, name, queue
  ),
  emptied as (
    delete from task_stats s using claimed c
    where s.minute = c.minute and s.name = c.name and s.queue = c.queue
      and not exists (select 1 from totals x where x.minute = c.minute and x.name = c.name and x.queue = c.queue)
  )
  insert into task_stats (minute, name, queue, succeeded, failed, retried, revoked, expired, runtime_bins, runtime_counts, wait_bins, wait_counts)
  select x.minute, x.name, x.queue, x.succeeded, x.failed, x.retried, x.revoked, x.expired,
    coalesce(r.bins, '{}'), coalesce(r.counts, '{}'), coalesce(w.bins, '{}'), coalesce(w.counts, '{}')
  from totals x left join runtime r using (minute, name, queue) left join wait w using (minute, name, queue)
  order by x.name, x.minute, x.queue
  on conflict (name, minute, queue) do update set
    succeeded = excluded.succeeded, failed = excluded.failed, retried = excluded.retried,
    revoked = excluded.revoked, expired = excluded.expired,
    runtime_bins = excluded.runtime_bins, runtime_counts = excluded.runtime_counts,
    wait_bins = excluded.wait_bins, wait_counts = excluded.wait_counts`;

export interface RollupOptions {
  /**
   * Marks for minutes before this are dropped, not rebuilt: their tasks may
   * have been deleted by retention, and rebuilding from what is left would
   * shrink statistics that were right (a very late replay of old events).
   */
  frozenBefore?: Date;
}

interface Claimed {
  minute: number;
  name: string;
  queue: string;
}

/**
 * Rebuilds every marked bucket, in steps, and returns how many were rebuilt.
 * Idempotent, and safe with several processes running it at once (each
 * takes different marks).
 */
export async function rollUpStatistics(database: Database, options: RollupOptions = {}): Promise<number> {
  const frozen = options.frozenBefore ? options.frozenBefore.getTime() / 1000 : -Infinity;
  let rebuilt = 0;
  for (;;) {
    let claimed: Claimed[] = [];
    await database.transaction(async (query) => {
      claimed = rowsOf<Claimed>(await query(CLAIM, [MARKS_PER_STEP]));
      const live = claimed.filter((c) => Number(c.minute) >= frozen).map((c) => ({ ...c, minute: Number(c.minute) }));
      if (live.length > 0) await query(REBUILD, [JSON.stringify(live)]);
      rebuilt += live.length;
    });
    if (claimed.length < MARKS_PER_STEP) return rebuilt;
  }
}

/** Statistics rows deleted per statement, so pruning a year never holds one long transaction. */
const PRUNE_STEP = 5000;

/**
 * Deletes the statistics of minutes before `olderThan` (STATS_RETENTION),
 * with their pending marks, in bounded steps. Returns the rows deleted.
 */
export async function pruneStatistics(database: Database, olderThan: Date): Promise<number> {
  let deleted = 0;
  for (;;) {
    const rows = await database.rows<{ n: number }>(sql`with gone as (
        delete from task_stats where (name, minute, queue) in (
          select name, minute, queue from task_stats where minute < ${olderThan.toISOString()}::timestamptz limit ${PRUNE_STEP})
        returning 1)
      select count(*)::int as n from gone`);
    const n = Number(rows[0]?.n ?? 0);
    deleted += n;
    if (n < PRUNE_STEP) break;
  }
  await database.rows(sql`delete from task_stats_dirty where minute < ${olderThan.toISOString()}::timestamptz`);
  return deleted;
}
