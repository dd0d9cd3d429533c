/**
 * The writer's side of the statistics: in the transaction that upserts a
 * batch's tasks, the buckets those tasks are counted in are marked for the
 * rollup (rollup.ts) to rebuild — the bucket each task is in before the
 * upsert (the one it may leave: a retry that runs again, a late name or
 * queue) and the one it is in after. Marking is idempotent: a replay marks
 * the same buckets, and rebuilding a bucket twice gives the same row.
 *
 * Locks, so that no change is ever missed and writers do not deadlock:
 * - before the upsert, the batch's existing task rows are locked, in the
 *   order the upsert takes them (ids in C order, as JavaScript sorts them),
 *   so the "before" bucket is the one the upsert really moves a task out of;
 * - a task row another transaction inserted but had not committed when this
 *   one looked is invisible to that look, yet the upsert (which waits for
 *   it) updates it: its "before" bucket is unknown. The upsert says how many
 *   rows it updated (xmax ≠ 0); if more than were locked before, the whole
 *   transaction is tried again (ConcurrentTaskInsert), and this time sees it;
 * - all marks are written by one statement after the upsert, sorted, with
 *   an update on conflict, which holds each mark's row lock until the
 *   writer commits: writers take marks in one order (no deadlock). Each
 *   write gives the mark a new row version, and the rollup clears only the
 *   version it read before rebuilding, so it never clears the mark of a
 *   change its rebuild did not see; nor does a writer ever wait for a
 *   rebuild (rollup.ts).
 */
import { type RawQuery, rowsOf } from "../store/database.ts";
import type { Statement } from "../store/upsert.ts";
import { BUCKET_KEY, HAS_OUTCOME, OUTCOME_MINUTE } from "./outcome.ts";

const IDS = `select json_array_elements_text($1::text::json)`;

/** Locks the batch's existing tasks; answers how many there are, and their buckets as JSON text. */
const BEFORE = `with locked as (select * from tasks where id in (${IDS}) order by id collate "C" for update)
  select
    (select count(*) from locked)::int as found,
    (select coalesce(json_agg(b), '[]') from (
      select distinct extract(epoch from ${OUTCOME_MINUTE})::float8 as minute, t.name, coalesce(t.queue, '') as queue
      from locked t where ${HAS_OUTCOME}) b)::text as buckets`;

const MARK = `insert into task_stats_dirty as d (minute, name, queue, marked_at)
    select minute, name, queue, now() from (
      select ${BUCKET_KEY} from tasks t where t.id in (${IDS}) and ${HAS_OUTCOME}
      union
      select to_timestamp(minute), name, queue from json_to_recordset($2::text::json) as x(minute float8, name text, queue text)
    ) as b(minute, name, queue)
    order by minute, name, queue
    on conflict (minute, name, queue) do update set marked_at = excluded.marked_at`;

/** A task row appeared under this transaction (another writer's insert): try the transaction again. */
export class ConcurrentTaskInsert extends Error {
  constructor(n: number) {
    super(`${n} task(s) were inserted by another writer during this batch; writing it again`);
  }
}

/**
 * Runs the tasks' upsert (whose only parameter is $1, and which returns
 * `inserted`, true for a row it created) between locking the tasks (and
 * reading their buckets) and marking their buckets, before and after.
 * Answers the upsert's rows. Throws ConcurrentTaskInsert when the
 * transaction must be retried.
 */
export async function upsertTasksWithStatsMarks(query: RawQuery, taskIds: readonly string[], upsert: Statement): Promise<Record<string, unknown>[]> {
  const ids = JSON.stringify(taskIds);
  const [before] = rowsOf<{ found: number; buckets: string }>(await query(BEFORE, [ids]));
  const [text, params] = upsert;
  const rows = rowsOf(await query(text, params));
  // Every row locked above is updated by the upsert: more updated rows than that means one appeared meanwhile.
  const updated = rows.filter((r) => r.inserted === false).length;
  const raced = updated - Number(before?.found ?? 0);
  if (raced > 0) throw new ConcurrentTaskInsert(raced);
  await query(MARK, [ids, before?.buckets ?? "[]"]);
  return rows;
}
