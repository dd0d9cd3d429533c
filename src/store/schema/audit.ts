import { bigserial, index, integer, jsonb, pgTable, text } from "drizzle-orm/pg-core";
import { ts } from "./columns.ts";

/**
 * Every control action an admin asked for (revoke, terminate, requeue,
 * retry, purge, schedules declared or removed), refused or done: who, when,
 * what, on what, how it ended and from which address. A table of its own so
 * that task retention never deletes it.
 */
export const auditLog = pgTable(
  "audit_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    at: ts("at").notNull(),
    /** The signed-in user (CRISPER_AUTH). */
    actor: text("actor").notNull(),
    /** revoke, terminate, requeue, retry, retry_bulk, purge, schedule_add, schedule_remove. */
    action: text("action").notNull(),
    /** A task id, a hostname, a queue, a schedule name, or a task name for a bulk retry. */
    target: text("target").notNull(),
    /** ok, refused (the action was not done, and why) or failed (the broker did not take it). */
    outcome: text("outcome").notNull(),
    /** The HTTP status answered. */
    status: integer("status").notNull(),
    /** What was done or why not: counts, new task ids, the reason. */
    detail: jsonb("detail").$type<Record<string, unknown>>().notNull(),
    /** The request's TCP peer. */
    ip: text("ip"),
  },
  (t) => [index("audit_log_recent_idx").on(t.at.desc(), t.id.desc())],
);

/** A task sent again by Crisper (retry): the new task's id and the one it retries. */
export const taskRetries = pgTable(
  "task_retries",
  {
    taskId: text("task_id").primaryKey(),
    retryOf: text("retry_of").notNull(),
    at: ts("at").notNull(),
    actor: text("actor").notNull(),
  },
  (t) => [index("task_retries_retry_of_idx").on(t.retryOf)],
);
