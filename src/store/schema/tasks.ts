import { sql } from "drizzle-orm";
import { sqlStateList, UNFINISHED_STATES } from "../../celery/states.ts";
import { bigint, boolean, doublePrecision, index, integer, pgTable, smallint, text } from "drizzle-orm/pg-core";
import { brokerColumn, ts } from "./columns.ts";

/**
 * One row per Celery task id: the merge of every event seen about it
 * (state/task-patch.ts defines the rules; store/writes.ts applies them in SQL).
 * The `*_key` columns are what the merge compares; they never leave the store.
 */
export const tasks = pgTable(
  "tasks",
  {
    id: text("id").primaryKey(),
    name: text("name"),
    args: text("args"),
    kwargs: text("kwargs"),
    queue: text("queue"),
    routingKey: text("routing_key"),
    exchange: text("exchange"),
    rootId: text("root_id"),
    parentId: text("parent_id"),
    eta: text("eta"),
    expires: text("expires"),
    infoSource: smallint("info_source").notNull().default(0),

    state: text("state").notNull(),
    stateKey: bigint("state_key", { mode: "number" }).notNull(),
    worker: text("worker"),
    workerKey: bigint("worker_key", { mode: "number" }).notNull().default(0),
    result: text("result"),
    runtime: doublePrecision("runtime"),
    resultKey: bigint("result_key", { mode: "number" }).notNull().default(0),
    exception: text("exception"),
    traceback: text("traceback"),
    exceptionKey: bigint("exception_key", { mode: "number" }).notNull().default(0),

    retries: integer("retries"),
    sentAt: ts("sent_at"),
    receivedAt: ts("received_at"),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
    firstSeenAt: ts("first_seen_at").notNull(),
    lastEventAt: ts("last_event_at").notNull(),
    /**
     * A worker discarded it unrun: its `expires` had passed when the worker
     * took it from the queue (`task-revoked` with `expired: true`).
     */
    expired: boolean("expired").notNull().default(false),
    broker: brokerColumn(),
  },
  (t) => [
    // Lists are newest first and page on (first_seen_at, id): one index per
    // filter. The indexes leave the id out (a third of their size or less: a
    // task id is 37 bytes, and equal keys are then deduplicated): PostgreSQL
    // walks them in first_seen_at order and sorts only the tasks of one same
    // microsecond by id (an incremental sort).
    index("tasks_recent_idx").on(t.firstSeenAt.desc()),
    index("tasks_name_recent_idx").on(t.name, t.firstSeenAt.desc()),
    index("tasks_state_recent_idx").on(t.state, t.firstSeenAt.desc()),
    index("tasks_worker_recent_idx").on(t.worker, t.firstSeenAt.desc()),
    index("tasks_queue_recent_idx").on(t.queue, t.firstSeenAt.desc()),
    // Unfinished tasks are what the detectors scan; keep that index small.
    index("tasks_unfinished_idx")
      .on(t.state, t.startedAt)
      .where(sql.raw(`state in (${sqlStateList(UNFINISHED_STATES)})`)),
    // Expired tasks are few: the `reason=expired` list and the tasks_expired check read these.
    index("tasks_expired_recent_idx").on(t.firstSeenAt.desc(), t.id.desc()).where(sql.raw("expired")),
    // The tasks_expired check reads the last few minutes' expirations, every pass.
    index("tasks_expired_finished_idx").on(t.finishedAt).where(sql.raw("expired")),
    // The statistics' rollup rebuilds a minute from the tasks that finished in it (stats/rollup.ts).
    index("tasks_finished_idx").on(t.finishedAt),
  ],
);
