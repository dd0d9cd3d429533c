import { bigint, json, jsonb, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
import { ts } from "./columns.ts";

/**
 * Every task event, kept as it came. The key is a hash of the event's content
 * (state/event-row.ts), so the same event stored twice is stored once. The
 * primary key starts with the task id: it is also the index for "a task's events".
 */
export const events = pgTable(
  "events",
  {
    taskId: text("task_id").notNull(),
    key: bigint("key", { mode: "bigint" }).notNull(),
    type: text("type").notNull(),
    hostname: text("hostname").notNull(),
    timestamp: ts("timestamp").notNull(),
    localReceived: ts("local_received").notNull(),
    /** "events" (the event stream) or "result-backend". */
    source: text("source").notNull(),
    /**
     * json, not jsonb: kept as the collector wrote it (compact JSON text), a
     * third smaller than jsonb's binary form for these small objects, and
     * nothing queries inside it.
     */
    fields: json("fields").$type<Record<string, unknown>>().notNull(),
  },
  (t) => [primaryKey({ name: "events_pkey", columns: [t.taskId, t.key] })],
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
