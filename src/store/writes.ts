/**
 * The collector's batched writes. Each batch is a handful of statements
 * whatever its size: rows travel as one JSON parameter and are unpacked by
 * json_to_recordset, which works the same on PostgreSQL and PGlite and has no
 * parameter limit.
 *
 * Every write is idempotent and order-independent: tasks upsert with the
 * join of state/task-patch.ts written in SQL, events are keyed by content,
 * workers keep the greatest timestamps. Two collectors, a replay, or a retry
 * after a failed commit all end in the same rows.
 *
 * The task and worker upserts are a merge rule per column (TASK_MERGE,
 * WORKER_MERGE below); store/upsert.ts writes their SQL from the drizzle
 * schema. A new column is one edit in the schema and its rule here.
 */
import type { BrokerHealth, QueueSample } from "../broker/port.ts";
import type { EventRow } from "../state/event-row.ts";
import type { TaskPatch } from "../state/task-patch.ts";
import type { WorkerPatch } from "../state/worker.ts";
import { type Database, sqlState } from "./database.ts";
import { tasks, workers } from "./schema/index.ts";
import { ConcurrentTaskInsert, upsertTasksWithStatsMarks } from "../stats/marks.ts";
import { DEFAULT_BROKER } from "./schema/columns.ts";
import { FROM_RESULT_BACKEND, SHARED_RETURNING, type SharedRow, withoutShared } from "./shared-fields.ts";
import { type MergeRules, type Statement, firstNonNull, greatest, incomingIf, least, upsert } from "./upsert.ts";

export interface WorkerEventRow {
  hostname: string;
  key: string;
  type: string;
  timestamp: number;
  localReceived: number;
  fields: Record<string, unknown>;
}

export interface Batch {
  events: EventRow[];
  tasks: TaskPatch[];
  workers: WorkerPatch[];
  workerEvents: WorkerEventRow[];
  /** The broker these events came from ("default" when only BROKER_URL is set). */
  broker?: string;
}

export async function writeBatch(database: Database, batch: Batch): Promise<void> {
  // Sorted so that concurrent collectors lock rows in the same order (no deadlocks).
  const taskPatches = [...batch.tasks].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const workerPatches = [...batch.workers].sort((a, b) => (a.hostname < b.hostname ? -1 : 1));
  // The collector's hot path: plain SQL text and parameters, no query builder.
  const broker = batch.broker ?? DEFAULT_BROKER;
  const write = () =>
    database.transaction(async (query) => {
      // Tasks first: their rows stay locked until commit, which makes the
      // events' "not already stored" check safe against a second collector
      // (every event row has its task's patch in the same batch: buildBatch),
      // and what the rows now hold final for shared-fields.ts. With them, the
      // statistics' buckets these tasks leave and enter are marked for the
      // rollup (stats/marks.ts).
      const taskRows = new Map<string, SharedRow>();
      if (taskPatches.length > 0) {
        const upserted = upsertTasks(taskPatches.map((t) => ({ ...t, broker })));
        for (const row of await upsertTasksWithStatsMarks(query, taskPatches.map((p) => p.id), upserted)) taskRows.set(String(row.id), row);
      }
      if (batch.events.length > 0) await query(...insertEvents(batch.events, taskRows));
      if (workerPatches.length > 0) await query(...upsertWorkers(workerPatches, broker));
      if (batch.workerEvents.length > 0) await query(...insertWorkerEvents(batch.workerEvents));
    });
  // Another writer inserting one of these tasks at the same moment: once it
  // has committed, the next attempt sees its row (rare; the second attempt
  // all but always does). Two writers can also each hold a row the other
  // needs: one inserting a new task while the other locks a task that the
  // first one's previous batch created meanwhile. PostgreSQL then aborts one
  // of them as a deadlock; every write here is idempotent, so it is simply
  // written again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (e) {
      const again = e instanceof ConcurrentTaskInsert || sqlState(e) === DEADLOCK_DETECTED;
      if (!again || attempt >= CONCURRENT_INSERT_ATTEMPTS) throw e;
    }
  }
}

/** PostgreSQL's SQLSTATE for "deadlock detected". */
const DEADLOCK_DETECTED = "40P01";

const CONCURRENT_INSERT_ATTEMPTS = 10;

/**
 * Events travel as one JSON array per column, zipped back into rows
 * server-side (ROWS FROM): JSON.stringify is native, so this costs the
 * collector a third of what postgres.js's array parameters do (measured).
 * An event from the event stream goes without the descriptive fields its
 * task's row (`taskRows`, as the upsert just left it) holds the same
 * (shared-fields.ts).
 */
function insertEvents(rows: EventRow[], taskRows: ReadonlyMap<string, SharedRow>): Statement {
  const n = rows.length;
  const taskId = new Array<string>(n);
  const key = new Array<string>(n);
  const type = new Array<string>(n);
  const hostname = new Array<string>(n);
  const ts = new Array<number>(n);
  const lr = new Array<number>(n);
  const fields = new Array<Record<string, unknown>>(n);
  const mask = new Array<number>(n);
  const fresh = new Array<boolean>(n);
  for (let i = 0; i < n; i++) {
    const e = rows[i] as EventRow;
    taskId[i] = e.taskId;
    key[i] = e.key;
    type[i] = e.type;
    hostname[i] = e.hostname;
    ts[i] = e.timestamp;
    lr[i] = e.localReceived;
    // Only the event stream's descriptive fields are final in the task row.
    const shared = e.source === "events" ? withoutShared(e.fields, taskRows.get(e.taskId)) : { mask: 0, fields: e.fields };
    fields[i] = shared.fields;
    // Where it came from is one more bit of the same column (shared-fields.ts).
    mask[i] = shared.mask | (e.source === "result-backend" ? FROM_RESULT_BACKEND : 0);
    fresh[i] = taskRows.get(e.taskId)?.inserted === true;
  }
  const column = (i: number) => `json_array_elements_text($${i}::text::json)`;
  // No unique index to conflict on (schema/events.ts): an event already
  // stored, or twice in this batch, is left out here. A task this
  // transaction created has none stored: nobody else could write its events
  // without its row, which this transaction holds.
  return [
    `insert into events (task_id, key, type, hostname, timestamp, local_received, fields, fields_in_task)
    select distinct on (x.task_id, k.key) x.task_id, k.key, x.type::task_event_type, x.hostname, to_timestamp(x.ts::float8), to_timestamp(x.lr::float8),
      x.fields, x.mask::smallint
    from rows from (${[1, 2, 3, 4, 5, 6].map(column).join(", ")}, json_array_elements($7::text::json), ${column(8)}, ${column(9)})
      as x(task_id, key_text, type, hostname, ts, lr, fields, mask, fresh),
      lateral (select x.key_text::bigint as key) k
    where x.fresh::boolean or not exists (select 1 from events e where e.task_id = x.task_id and e.key = k.key)`,
    [taskId, key, type, hostname, ts, lr, fields, mask, fresh].map((c) => JSON.stringify(c)),
  ];
}

function insertWorkerEvents(rows: WorkerEventRow[]): Statement {
  const payload = JSON.stringify(
    rows.map((e) => ({ hostname: e.hostname, key: e.key, type: e.type, ts: e.timestamp, lr: e.localReceived, fields: e.fields })),
  );
  return [
    `insert into worker_events (hostname, key, type, timestamp, local_received, fields)
    select hostname, key, type, to_timestamp(ts), to_timestamp(lr), fields
    from json_to_recordset($1::text::json)
      as x(hostname text, key bigint, type text, ts float8, lr float8, fields jsonb)
    on conflict do nothing`,
    [payload],
  ];
}

/**
 * A value travels with its key: the greater (key, tie) wins. The tie compares
 * text in the C collation, as JavaScript compares strings in mergeTaskPatch.
 * `$` stands for the row: stored or incoming (excluded).
 */
function winsBy(key: string, tie: string): string {
  return `(excluded.${key}, ${tie.replaceAll("$", "excluded")} collate "C") > (stored.${key}, ${tie.replaceAll("$", "stored")} collate "C")`;
}

const STATE_WINS = winsBy("state_key", "$.state");
const WORKER_WINS = winsBy("worker_key", "coalesce($.worker, '')");
const RESULT_WINS = winsBy("result_key", "coalesce($.result, '') || chr(1) || coalesce($.runtime::text, '')");
const EXCEPTION_WINS = winsBy("exception_key", "coalesce($.exception, '') || chr(1) || coalesce($.traceback, '')");
/** From the better source (the event stream's over the result backend's), first non-null. */
const DESCRIPTIVE = firstNonNull("excluded.info_source > stored.info_source");

/** mergeTaskPatch (state/task-patch.ts), column by column, in SQL. */
const TASK_MERGE = {
  id: "key",
  // Descriptive fields, and the source they came from.
  name: DESCRIPTIVE, args: DESCRIPTIVE, kwargs: DESCRIPTIVE, queue: DESCRIPTIVE, routingKey: DESCRIPTIVE,
  exchange: DESCRIPTIVE, rootId: DESCRIPTIVE, parentId: DESCRIPTIVE, eta: DESCRIPTIVE, expires: DESCRIPTIVE,
  infoSource: greatest,
  // Each value with its key: from the event with the greatest one.
  state: incomingIf(STATE_WINS), stateKey: greatest,
  worker: incomingIf(WORKER_WINS), workerKey: greatest,
  result: incomingIf(RESULT_WINS), runtime: incomingIf(RESULT_WINS), resultKey: greatest,
  exception: incomingIf(EXCEPTION_WINS), traceback: incomingIf(EXCEPTION_WINS), exceptionKey: greatest,
  // Times: the first send and sighting; the latest run; the most retries.
  sentAt: least, firstSeenAt: least,
  receivedAt: greatest, startedAt: greatest, finishedAt: greatest, lastEventAt: greatest,
  retries: greatest,
  // Once discarded as expired, always (mergeTaskPatch: a || b).
  expired: (c) => `stored.${c} or excluded.${c}`,
  // Task ids are unique across brokers: the broker whose event stream saw it
  // (the better source) over one whose result backend announced it.
  broker: (c) => `case when excluded.info_source > stored.info_source then excluded.${c} else stored.${c} end`,
} satisfies MergeRules<typeof tasks>;

/**
 * The upsert returns each row as it left it (for shared-fields.ts) and
 * whether it inserted it (xmax is 0 on a row this transaction inserted): a
 * task new here has no events stored yet, so its events skip the check.
 */
const upsertTasks = upsert(tasks, TASK_MERGE, `${SHARED_RETURNING}, (xmax = 0) as inserted`);

/** Stats from the worker event with the latest sender timestamp, first non-null. */
const FROM_NEWER_STATS = firstNonNull("excluded.stats_at > stored.stats_at or stored.stats_at is null");

/** mergeWorkerPatch (state/worker.ts), column by column, in SQL. */
const WORKER_MERGE = {
  broker: "key",
  hostname: "key",
  // Signs of life and their times: the latest; the first sighting: the earliest.
  lastHeartbeatAt: greatest, statsAt: greatest, onlineAt: greatest, offlineAt: greatest,
  firstSeenAt: least,
  // The stats of the latest worker event.
  freq: FROM_NEWER_STATS, active: FROM_NEWER_STATS, processed: FROM_NEWER_STATS, loadavg: FROM_NEWER_STATS,
  pid: FROM_NEWER_STATS, swIdent: FROM_NEWER_STATS, swVer: FROM_NEWER_STATS, swSys: FROM_NEWER_STATS,
  // What the worker says it holds, from remote control (queries/detect.ts recordInspection).
  reserved: "not written", reservedTasks: "not written", activeTasks: "not written", inspectedAt: "not written",
} satisfies MergeRules<typeof workers>;

const upsertWorkerRows = upsert(workers, WORKER_MERGE);

function upsertWorkers(patches: WorkerPatch[], broker: string): Statement {
  const now = Date.now() / 1000;
  return upsertWorkerRows(patches.map((w) => ({ ...w, broker, firstSeenAt: w.lastHeartbeatAt ?? w.offlineAt ?? now })));
}

export async function insertQueueSamples(database: Database, samples: QueueSample[], broker = DEFAULT_BROKER): Promise<void> {
  if (samples.length === 0) return;
  const payload = JSON.stringify(
    samples.map((s) => ({
      broker,
      queue: s.name,
      sampled_at: s.sampledAt,
      depth: s.depth,
      by_priority: s.byPriority,
      unacked: s.unacked,
      oldest: s.oldestUnackedAgeS,
    })),
  );
  // Two statements (prepared statements take one at a time) on the same
  // rows, in the transaction that survives a database restart (database.ts).
  const rows = `json_to_recordset($1::text::json)
      as x(broker text, queue text, sampled_at float8, depth integer, by_priority jsonb, unacked integer, oldest float8)`;
  await database.transaction(async (query) => {
    await query(
      `insert into queue_samples (broker, queue, sampled_at, depth, by_priority, unacked, oldest_unacked_age_s)
    select broker, queue, to_timestamp(sampled_at), depth, by_priority, unacked, oldest
    from ${rows}
    on conflict do nothing`,
      [payload],
    );
    await query(
      `insert into queues as queues (broker, name, depth, by_priority, unacked, oldest_unacked_age_s, sampled_at, first_seen_at)
    select broker, queue, depth, by_priority, unacked, oldest, to_timestamp(sampled_at), to_timestamp(sampled_at)
    from ${rows}
    on conflict (broker, name) do update set
      depth = excluded.depth, by_priority = excluded.by_priority, unacked = excluded.unacked,
      oldest_unacked_age_s = excluded.oldest_unacked_age_s, sampled_at = excluded.sampled_at
      where excluded.sampled_at >= queues.sampled_at`,
      [payload],
    );
  });
}

/**
 * One broker health sample, and the history past `keepS` pruned in the same
 * transaction: the table stays at a few thousand rows per broker. Two
 * collectors sampling at once both write (their times differ); a replay of
 * the same moment is a no-op.
 */
export async function insertBrokerSample(database: Database, broker: string, h: BrokerHealth, keepS: number): Promise<void> {
  await database.transaction(async (query) => {
    await query(
      `insert into broker_samples (broker, sampled_at, kind, version, uptime_s, used_memory_bytes, max_memory_bytes, max_memory_policy,
        connected_clients, ops_per_second, evicted_keys, memory_alarm, disk_alarm, disk_free_bytes)
      values ($1, to_timestamp($2::float8), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
      on conflict do nothing`,
      [
        broker, h.sampledAt, h.kind, h.version, h.uptimeS, h.usedMemoryBytes, h.maxMemoryBytes, h.maxMemoryPolicy,
        h.connectedClients, h.opsPerSecond, h.evictedKeys, h.memoryAlarm, h.diskAlarm, h.diskFreeBytes,
      ],
    );
    await query(`delete from broker_samples where broker = $1 and sampled_at < to_timestamp($2::float8)`, [broker, h.sampledAt - keepS]);
  });
}
