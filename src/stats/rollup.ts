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

/** Marks read per step: a pass after an outage works through the backlog in steps this size. */
const MARKS_PER_STEP = 500;

/**
 * Reads up to $2 marks after the key $1 (JSON [minute, name, queue], or
 * null from the start), oldest minute first, each with its row version
 * (xmin): a writer that marks the bucket again replaces the row, and so the
 * version. Nothing is locked or deleted here: a writer never waits for a
 * rollup (a rebuild of a busy minute takes a second or more; writers that
 * waited for it, as they did when the marks were deleted in the rebuild's
 * transaction, stalled the collector for as long).
 */
const PENDING = `select extract(epoch from d.minute)::float8 as minute, d.name, d.queue, d.xmin::text as version
  from task_stats_dirty d
  where ($1::text::json is null
     or (d.minute, d.name, d.queue) > (to_timestamp(($1::text::json->>0)::float8), $1::text::json->>1, $1::text::json->>2))
    and ($3::timestamptz is null or d.minute < $3::timestamptz - interval '1 minute')
  order by d.minute, d.name, d.queue limit $2`;

/**
 * Clears the marks in $1 (JSON: [{minute, name, queue, version}]) that are
 * still the versions read before the rebuild. One marked again meanwhile
 * (its writer committed after the rebuild's snapshot, or is about to: the
 * delete waits for its row lock, then sees the new version) stays, and the
 * next pass rebuilds its bucket with that change.
 */
const CLEAR = `delete from task_stats_dirty d
  using json_to_recordset($1::text::json) as x(minute float8, name text, queue text, version text)
  where d.minute = to_timestamp(x.minute) and d.name = x.name and d.queue = x.queue and d.xmin::text = x.version`;

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
  /**
   * Only the buckets of minutes that ended before this are rebuilt; the
   * marks of later ones wait. The loop passes now: a minute still going on
   * is marked by nearly every batch, and rebuilding it every few seconds
   * (150,000 tasks a minute at 10,000 events/s took 2–3 s each time) ate a
   * core the collector needed. Unset (retention, tests): every mark.
   */
  settledBefore?: Date;
}

interface Mark {
  minute: number;
  name: string;
  queue: string;
  version: string;
}

/** Any number: one lock id for the rollup, whichever process runs it. */
const ROLLUP_LOCK = 0x63727374; // "crst"

/**
 * Rebuilds every marked bucket, in steps, and returns how many were rebuilt.
 * Idempotent. Several processes (collectors) take turns: two rebuilds of
 * one bucket at once could leave the older snapshot's counts last.
 */
export async function rollUpStatistics(database: Database, options: RollupOptions = {}): Promise<number> {
  const frozen = options.frozenBefore ? options.frozenBefore.getTime() / 1000 : -Infinity;
  let rebuilt = 0;
  let after: string | null = null;
  for (;;) {
    let read = 0;
    let last: Mark | undefined;
    // Each statement sees what was committed when it began (READ
    // COMMITTED): the rebuild sees every change marked before PENDING read
    // its mark. The transaction ends right after CLEAR, so a writer marking
    // a cleared bucket again waits for no more than the commit.
    await database.transaction(async (query) => {
      await query(`select pg_advisory_xact_lock(${ROLLUP_LOCK})`, []);
      const marks = rowsOf<Mark>(await query(PENDING, [after, MARKS_PER_STEP, options.settledBefore?.toISOString() ?? null]));
      read = marks.length;
      last = marks.at(-1);
      if (read === 0) return;
      const live = marks.filter((m) => Number(m.minute) >= frozen).map((m) => ({ minute: Number(m.minute), name: m.name, queue: m.queue }));
      if (live.length > 0) await query(REBUILD, [JSON.stringify(live)]);
      await query(CLEAR, [JSON.stringify(marks)]);
      rebuilt += live.length;
    });
    if (read < MARKS_PER_STEP || !last) return rebuilt;
    const m: Mark = last;
    after = JSON.stringify([Number(m.minute), m.name, m.queue]);
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
