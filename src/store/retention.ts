/**
 * Retention: what is older than its setting is deleted, so the store stops
 * growing. One pass deletes
 * - tasks whose last activity (last_event_at) is older than TASK_RETENTION,
 *   with their events;
 * - resolved alerts resolved longer ago than ALERT_RETENTION (open ones stay,
 *   whatever their age);
 * - and whatever `extraPrunes` delete (statistics, pruned by their owner).
 *
 * Deleted in bounded batches, each its own short statement, rather than by
 * dropping time partitions: a task row is updated in place by every event
 * about it (the collector's upsert on its id), so a partitioned tasks table
 * would need its partition key in the primary key and could no longer be
 * upserted by id alone; and a task lives across partitions' boundaries. A
 * batch of a few thousand tasks holds its row locks for tens of milliseconds,
 * so the collector's writes wait at most that long, and a pause between
 * batches leaves the database to them (bench/run.ts, phase `retention`,
 * measures the lag while a pass runs: 5,000-task batches back to back put
 * p99 past a second on a busy machine; 2,000 with 100 ms pauses did not).
 */
import { sql } from "drizzle-orm";
import { errorText, type Logger } from "../log.ts";
import { retentionMetrics } from "../metrics.ts";
import { formatRetention } from "../format.ts";
import { type Periodic, every } from "../supervise.ts";
import { type Database, isDatabaseUnavailable } from "./database.ts";

export interface RetentionSettings {
  /** Seconds (TASK_RETENTION). */
  taskRetentionS: number;
  /** Seconds (ALERT_RETENTION). */
  alertRetentionS: number;
  /** Seconds (STATS_RETENTION): for the statistics' own prune steps. */
  statsRetentionS: number;
}

/** A prune step of another part of the store (statistics): deletes what is too old at `now`, returns how many rows. */
export type PruneStep = (database: Database, now: Date) => Promise<number>;

export interface RetentionOptions extends RetentionSettings {
  /** Tasks per batch (default 2,000 on PostgreSQL, 1,000 on PGlite, where a batch holds the one connection). */
  batchTasks?: number;
  /** A pause between batches, ms (default 100): the collector's writes get the database's time in between. */
  pauseMs?: number;
  /** Runs before any task is deleted: what must be kept from them (statistics) is rolled up here. */
  beforePrune?: () => Promise<void>;
  /** Further prunes run after the tasks and alerts, each counted under its index as kind `extra<i>` unless it names itself. */
  extraPrunes?: ReadonlyArray<PruneStep | { kind: string; prune: PruneStep }>;
  /** Told of each task batch when it is done (the benchmark's timeline). */
  onBatch?: (b: { tasks: number; events: number; ms: number }) => void;
}

export interface RetentionResult {
  tasks: number;
  events: number;
  alerts: number;
  /** Rows the extra prunes deleted, by kind. */
  extra: Record<string, number>;
  seconds: number;
  /** False when another process was running a pass (PostgreSQL, several collectors): this one left it to them. */
  ran: boolean;
}

/** Any number: one lock id for the retention pass, whichever process runs it. */
const RETENTION_LOCK = 0x63726973; // "cris"

/**
 * One batch: up to `limit` of the oldest tasks (tasks_recent_idx, walked from
 * its old end) whose last event is older than the cutoff, deleted with their
 * events. A task that got an event meanwhile is re-checked when its row is
 * locked (`last_event_at < cutoff` in the delete) and kept. The advisory lock
 * lasts the statement: two collectors' passes do not delete the same rows
 * at once (whichever is second stops; the first carries on).
 */
async function deleteTaskBatch(database: Database, cutoff: Date, limit: number): Promise<{ locked: boolean; tasks: number; events: number }> {
  const at = cutoff.toISOString();
  const [row] = await database.rows<{ locked: boolean; tasks: number; events: number }>(sql`
    with lock as (select pg_try_advisory_xact_lock(${RETENTION_LOCK}) as ok),
    doomed as (
      select id from tasks, lock
      where lock.ok and first_seen_at < ${at}::timestamptz and last_event_at < ${at}::timestamptz
      -- tasks_recent_idx walked backwards: the oldest first.
      order by first_seen_at asc nulls first, id asc nulls first
      limit ${limit}
    ),
    gone as (
      delete from tasks t using doomed d
      where t.id = d.id and t.last_event_at < ${at}::timestamptz
      returning t.id
    ),
    gone_events as (delete from events where task_id in (select id from gone) returning 1)
    select (select ok from lock) as locked, (select count(*) from gone)::int as tasks, (select count(*) from gone_events)::int as events`);
  return { locked: Boolean(row?.locked), tasks: Number(row?.tasks ?? 0), events: Number(row?.events ?? 0) };
}

async function deleteAlertBatch(database: Database, cutoff: Date, limit: number): Promise<number> {
  const [row] = await database.rows<{ n: number }>(sql`
    with gone as (
      delete from alerts where id in (
        select id from alerts where status = 'resolved' and resolved_at < ${cutoff.toISOString()}::timestamptz limit ${limit}
      ) returning 1
    )
    select count(*)::int as n from gone`);
  return Number(row?.n ?? 0);
}

/** One retention pass, to the end. */
export async function retentionPass(database: Database, o: RetentionOptions, now = new Date()): Promise<RetentionResult> {
  const t0 = performance.now();
  const limit = o.batchTasks ?? (database.kind === "pglite" ? 1000 : 2000);
  const pause = o.pauseMs ?? 100;
  const result: RetentionResult = { tasks: 0, events: 0, alerts: 0, extra: {}, seconds: 0, ran: true };
  await o.beforePrune?.();
  const taskCutoff = new Date(now.getTime() - o.taskRetentionS * 1000);
  for (;;) {
    const b0 = performance.now();
    const b = await deleteTaskBatch(database, taskCutoff, limit);
    o.onBatch?.({ tasks: b.tasks, events: b.events, ms: performance.now() - b0 });
    if (!b.locked) {
      result.ran = false;
      break;
    }
    result.tasks += b.tasks;
    result.events += b.events;
    retentionMetrics.deleted.inc({ kind: "tasks" }, b.tasks);
    retentionMetrics.deleted.inc({ kind: "events" }, b.events);
    if (b.tasks < limit) break;
    await Bun.sleep(pause);
  }
  if (result.ran) {
    const alertCutoff = new Date(now.getTime() - o.alertRetentionS * 1000);
    for (;;) {
      const n = await deleteAlertBatch(database, alertCutoff, limit);
      result.alerts += n;
      retentionMetrics.deleted.inc({ kind: "alerts" }, n);
      if (n < limit) break;
    }
    for (const [i, step] of (o.extraPrunes ?? []).entries()) {
      const { kind, prune } = typeof step === "function" ? { kind: `extra${i}`, prune: step } : step;
      const n = await prune(database, now);
      result.extra[kind] = (result.extra[kind] ?? 0) + n;
      retentionMetrics.deleted.inc({ kind }, n);
    }
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

/**
 * Runs a pass now and every `intervalS`, never two at once, each logged once
 * with its counts and duration; a pass that fails is reported and the next
 * runs on time (supervise.ts).
 */
export function startRetention(database: Database, o: RetentionOptions & { intervalS: number; log: Logger }): Periodic {
  const pass = async () => {
    try {
      const r = await retentionPass(database, o);
      if (!r.ran) {
        o.log.info(`another Crisper process is running the pass; skipped (${r.seconds.toFixed(1)} s)`);
        return;
      }
      const extra = Object.entries(r.extra).map(([k, n]) => `, ${n} ${k} rows older than ${formatRetention(o.statsRetentionS)}`).join("");
      o.log.info(
        `deleted ${r.tasks} tasks and ${r.events} events older than ${formatRetention(o.taskRetentionS)}, ` +
          `${r.alerts} resolved alerts older than ${formatRetention(o.alertRetentionS)}${extra}, in ${r.seconds.toFixed(1)} s`,
      );
    } catch (e) {
      // The database away is expected now and then; anything else is a bug, reported with its stack.
      if (!isDatabaseUnavailable(e)) throw e;
      o.log.warn(`the pass failed (${errorText(e)}); the next runs in ${o.intervalS} s`);
    }
  };
  const periodic = every("retention", o.intervalS * 1000, pass, o.log);
  void periodic.runNow();
  return periodic;
}
