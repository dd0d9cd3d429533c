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
 */
import type { QueueSample } from "../broker/port.ts";
import type { EventRow } from "../state/event-row.ts";
import type { TaskPatch } from "../state/task-patch.ts";
import type { WorkerPatch } from "../state/worker.ts";
import type { Database } from "./database.ts";

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
}

export async function writeBatch(database: Database, batch: Batch): Promise<void> {
  // Sorted so that concurrent collectors lock rows in the same order (no deadlocks).
  const tasks = [...batch.tasks].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const workers = [...batch.workers].sort((a, b) => (a.hostname < b.hostname ? -1 : 1));
  // The collector's hot path: plain SQL text and parameters, no query builder.
  await database.transaction(async (query) => {
    if (batch.events.length > 0) await query(...insertEvents(batch.events));
    if (tasks.length > 0) await query(...upsertTasks(tasks));
    if (workers.length > 0) await query(...upsertWorkers(workers));
    if (batch.workerEvents.length > 0) await query(...insertWorkerEvents(batch.workerEvents));
  });
}

type Statement = [text: string, params: unknown[]];

/**
 * Events travel as one JSON array per column, zipped back into rows
 * server-side (ROWS FROM): JSON.stringify is native, so this costs the
 * collector a third of what postgres.js's array parameters do (measured).
 */
function insertEvents(rows: EventRow[]): Statement {
  const n = rows.length;
  const taskId = new Array<string>(n);
  const key = new Array<string>(n);
  const type = new Array<string>(n);
  const hostname = new Array<string>(n);
  const ts = new Array<number>(n);
  const lr = new Array<number>(n);
  const source = new Array<string>(n);
  const fields = new Array<Record<string, unknown>>(n);
  for (let i = 0; i < n; i++) {
    const e = rows[i] as EventRow;
    taskId[i] = e.taskId;
    key[i] = e.key;
    type[i] = e.type;
    hostname[i] = e.hostname;
    ts[i] = e.timestamp;
    lr[i] = e.localReceived;
    source[i] = e.source;
    fields[i] = e.fields;
  }
  const column = (i: number) => `json_array_elements_text($${i}::text::json)`;
  return [
    `insert into events (task_id, key, type, hostname, timestamp, local_received, source, fields)
    select task_id, key::bigint, type, hostname, to_timestamp(ts::float8), to_timestamp(lr::float8), source, fields::jsonb
    from rows from (${[1, 2, 3, 4, 5, 6, 7].map(column).join(", ")}, json_array_elements($8::text::json))
      as x(task_id, key, type, hostname, ts, lr, source, fields)
    on conflict do nothing`,
    [taskId, key, type, hostname, ts, lr, source, fields].map((c) => JSON.stringify(c)),
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

/** Descriptive columns: from the better source, first non-null (mergeTaskPatch). */
const DESCRIPTIVE = ["name", "args", "kwargs", "queue", "routing_key", "exchange", "root_id", "parent_id", "eta", "expires"];

/**
 * A value travels with its key: the greater (key, tie) wins. The tie compares
 * text in the C collation, as JavaScript compares strings in mergeTaskPatch.
 */
function winner(key: string, tie: string) {
  return `(excluded.${key}, ${tie.replaceAll("$", "excluded")} collate "C") > (tasks.${key}, ${tie.replaceAll("$", "tasks")} collate "C")`;
}

const STATE_WINS = winner("state_key", "$.state");
const WORKER_WINS = winner("worker_key", "coalesce($.worker, '')");
const RESULT_WINS = winner("result_key", "coalesce($.result, '') || chr(1) || coalesce($.runtime::text, '')");
const EXCEPTION_WINS = winner("exception_key", "coalesce($.exception, '') || chr(1) || coalesce($.traceback, '')");

const TASK_UPSERT_SET = [
  ...DESCRIPTIVE.map(
    (c) => `${c} = case when excluded.info_source > tasks.info_source then coalesce(excluded.${c}, tasks.${c}) else coalesce(tasks.${c}, excluded.${c}) end`,
  ),
  "info_source = greatest(tasks.info_source, excluded.info_source)",
  `state = case when ${STATE_WINS} then excluded.state else tasks.state end`,
  "state_key = greatest(tasks.state_key, excluded.state_key)",
  `worker = case when ${WORKER_WINS} then excluded.worker else tasks.worker end`,
  "worker_key = greatest(tasks.worker_key, excluded.worker_key)",
  `result = case when ${RESULT_WINS} then excluded.result else tasks.result end`,
  `runtime = case when ${RESULT_WINS} then excluded.runtime else tasks.runtime end`,
  "result_key = greatest(tasks.result_key, excluded.result_key)",
  `exception = case when ${EXCEPTION_WINS} then excluded.exception else tasks.exception end`,
  `traceback = case when ${EXCEPTION_WINS} then excluded.traceback else tasks.traceback end`,
  "exception_key = greatest(tasks.exception_key, excluded.exception_key)",
  // greatest/least ignore nulls in PostgreSQL: exactly the merge's min/max.
  "retries = greatest(tasks.retries, excluded.retries)",
  "sent_at = least(tasks.sent_at, excluded.sent_at)",
  "received_at = greatest(tasks.received_at, excluded.received_at)",
  "started_at = greatest(tasks.started_at, excluded.started_at)",
  "finished_at = greatest(tasks.finished_at, excluded.finished_at)",
  "first_seen_at = least(tasks.first_seen_at, excluded.first_seen_at)",
  "last_event_at = greatest(tasks.last_event_at, excluded.last_event_at)",
].join(",\n      ");

function upsertTasks(patches: TaskPatch[]): Statement {
  const payload = JSON.stringify(
    patches.map((p) => ({
      id: p.id,
      name: p.name,
      args: p.args,
      kwargs: p.kwargs,
      queue: p.queue,
      routing_key: p.routingKey,
      exchange: p.exchange,
      root_id: p.rootId,
      parent_id: p.parentId,
      eta: p.eta,
      expires: p.expires,
      info_source: p.infoSource,
      state: p.state,
      state_key: p.stateKey,
      worker: p.worker,
      worker_key: p.workerKey,
      result: p.result,
      runtime: p.runtime,
      result_key: p.resultKey,
      exception: p.exception,
      traceback: p.traceback,
      exception_key: p.exceptionKey,
      retries: p.retries,
      sent_at: p.sentAt,
      received_at: p.receivedAt,
      started_at: p.startedAt,
      finished_at: p.finishedAt,
      first_seen_at: p.firstSeenAt,
      last_event_at: p.lastEventAt,
    })),
  );
  return [
    `insert into tasks as tasks (id, name, args, kwargs, queue, routing_key, exchange, root_id, parent_id, eta, expires,
      info_source, state, state_key, worker, worker_key, result, runtime, result_key, exception, traceback, exception_key,
      retries, sent_at, received_at, started_at, finished_at, first_seen_at, last_event_at)
    select id, name, args, kwargs, queue, routing_key, exchange, root_id, parent_id, eta, expires,
      info_source, state, state_key, worker, worker_key, result, runtime, result_key, exception, traceback, exception_key,
      retries, to_timestamp(sent_at), to_timestamp(received_at), to_timestamp(started_at), to_timestamp(finished_at),
      to_timestamp(first_seen_at), to_timestamp(last_event_at)
    from json_to_recordset($1::text::json) as x(id text, name text, args text, kwargs text, queue text, routing_key text,
      exchange text, root_id text, parent_id text, eta text, expires text, info_source smallint, state text, state_key bigint,
      worker text, worker_key bigint, result text, runtime float8, result_key bigint, exception text, traceback text,
      exception_key bigint, retries integer, sent_at float8, received_at float8, started_at float8, finished_at float8,
      first_seen_at float8, last_event_at float8)
    on conflict (id) do update set
      ${TASK_UPSERT_SET}`,
    [payload],
  ];
}

const WORKER_STATS = ["freq", "active", "processed", "loadavg", "pid", "sw_ident", "sw_ver", "sw_sys"];

function upsertWorkers(patches: WorkerPatch[]): Statement {
  const now = Date.now() / 1000;
  const payload = JSON.stringify(
    patches.map((w) => ({
      hostname: w.hostname,
      last_heartbeat_at: w.lastHeartbeatAt,
      stats_at: w.statsAt,
      freq: w.freq,
      active: w.active,
      processed: w.processed,
      loadavg: w.loadavg,
      pid: w.pid,
      sw_ident: w.swIdent,
      sw_ver: w.swVer,
      sw_sys: w.swSys,
      online_at: w.onlineAt,
      offline_at: w.offlineAt,
      first_seen_at: w.lastHeartbeatAt ?? w.offlineAt ?? now,
    })),
  );
  const newer = "excluded.stats_at > workers.stats_at or workers.stats_at is null";
  const set = [
    "last_heartbeat_at = greatest(workers.last_heartbeat_at, excluded.last_heartbeat_at)",
    ...WORKER_STATS.map((c) => `${c} = case when ${newer} then coalesce(excluded.${c}, workers.${c}) else coalesce(workers.${c}, excluded.${c}) end`),
    "stats_at = greatest(workers.stats_at, excluded.stats_at)",
    "online_at = greatest(workers.online_at, excluded.online_at)",
    "offline_at = greatest(workers.offline_at, excluded.offline_at)",
    "first_seen_at = least(workers.first_seen_at, excluded.first_seen_at)",
  ].join(",\n      ");
  return [
    `insert into workers as workers (hostname, last_heartbeat_at, stats_at, freq, active, processed, loadavg, pid,
      sw_ident, sw_ver, sw_sys, online_at, offline_at, first_seen_at)
    select hostname, to_timestamp(last_heartbeat_at), to_timestamp(stats_at), freq, active, processed, loadavg, pid,
      sw_ident, sw_ver, sw_sys, to_timestamp(online_at), to_timestamp(offline_at), to_timestamp(first_seen_at)
    from json_to_recordset($1::text::json) as x(hostname text, last_heartbeat_at float8, stats_at float8, freq float8,
      active integer, processed integer, loadavg jsonb, pid integer, sw_ident text, sw_ver text, sw_sys text,
      online_at float8, offline_at float8, first_seen_at float8)
    on conflict (hostname) do update set
      ${set}`,
    [payload],
  ];
}

export async function insertQueueSamples(database: Database, samples: QueueSample[]): Promise<void> {
  if (samples.length === 0) return;
  const payload = JSON.stringify(
    samples.map((s) => ({
      queue: s.name,
      sampled_at: s.sampledAt,
      depth: s.depth,
      by_priority: s.byPriority,
      unacked: s.unacked,
      oldest: s.oldestUnackedAgeS,
    })),
  );
  // Two statements (prepared statements take one at a time), in the
  // transaction that survives a database restart (database.ts).
  await database.transaction(async (query) => {
    await query(
      `insert into queue_samples (queue, sampled_at, depth, by_priority, unacked, oldest_unacked_age_s)
    select queue, to_timestamp(sampled_at), depth, by_priority, unacked, oldest
    from json_to_recordset($1::text::json)
      as x(queue text, sampled_at float8, depth integer, by_priority jsonb, unacked integer, oldest float8)
    on conflict do nothing`,
      [payload],
    );
    await query(
      `insert into queues as queues (name, depth, by_priority, unacked, oldest_unacked_age_s, sampled_at, first_seen_at)
    select queue, depth, by_priority, unacked, oldest, to_timestamp(sampled_at), to_timestamp(sampled_at)
    from json_to_recordset($1::text::json)
      as x(queue text, sampled_at float8, depth integer, by_priority jsonb, unacked integer, oldest float8)
    on conflict (name) do update set
      depth = excluded.depth, by_priority = excluded.by_priority, unacked = excluded.unacked,
      oldest_unacked_age_s = excluded.oldest_unacked_age_s, sampled_at = excluded.sampled_at
      where excluded.sampled_at >= queues.sampled_at`,
      [payload],
    );
  });
}
