import { bigint, index, json, jsonb, pgEnum, pgTable, primaryKey, smallint, text } from "drizzle-orm/pg-core";
import { TASK_EVENT_STATE, type TaskEventType } from "../../celery/states.ts";
import { ts } from "./columns.ts";

/**
 * Every task event, kept as it came. The key is a hash of the event's content
 * (state/event-row.ts), so the same event stored twice is stored once: the
 * collector inserts an event only if its task has no event of that key
 * (store/writes.ts), under the lock of the task's row, which it has just
 * upserted in the same transaction, so two collectors cannot both insert it.
 *
 * The index is on the task id alone, not unique: PostgreSQL then keeps a
 * task's few events as one index entry (B-tree deduplication), a quarter
 * of what a unique (task_id, key) index took.
 */
/**
 * Celery's task event types: the only ones the decoder keeps
 * (celery/envelope.ts refuses others), stored in 4 bytes rather than as text
 * (up to 15), and read back as the same strings. A new type Celery adds is a
 * new value here (drizzle-kit generates the ALTER TYPE).
 */
export const taskEventType = pgEnum("task_event_type", Object.keys(TASK_EVENT_STATE) as [TaskEventType, ...TaskEventType[]]);

export const events = pgTable(
  "events",
  {
    taskId: text("task_id").notNull(),
    key: bigint("key", { mode: "bigint" }).notNull(),
    type: taskEventType("type").notNull(),
    hostname: text("hostname").notNull(),
    timestamp: ts("timestamp").notNull(),
    localReceived: ts("local_received").notNull(),
    /**
     * json, not jsonb: kept as the collector wrote it (compact JSON text), a
     * third smaller than jsonb's binary form for these small objects, and
     * nothing queries inside it.
     */
    fields: json("fields").$type<Record<string, unknown>>().notNull(),
    /**
     * The fields left out of `fields` because the task's row holds them,
     * one bit each (store/shared-fields.ts); read them through
     * getTaskEvents, which puts them back. Bit 14 (FROM_RESULT_BACKEND)
     * says where the event came from instead of a text column: the result
     * backend's publish, not the event stream (4 × 7 bytes a task).
     */
    fieldsInTask: smallint("fields_in_task").notNull().default(0),
  },
  (t) => [index("events_task_idx").on(t.taskId)],
);

/** Worker life-cycle events (online, offline). Heartbeats only update `workers`. */
export const workerEvents = pgTable(
  "worker_events",
  {
    hostname: text("hostname").notNull(),
    key: bigint("key", { mode: "bigint" }).notNull(),
    type: text("type").notNull(),
    timestamp: ts("timestamp").notNull(),
    localReceived: ts("local_received").notNull(),
    fields: jsonb("fields").$type<Record<string, unknown>>().notNull(),
  },
  (t) => [primaryKey({ name: "worker_events_pkey", columns: [t.hostname, t.key] })],
);
