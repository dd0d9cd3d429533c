import { sql } from "drizzle-orm";
import { bigserial, doublePrecision, index, jsonb, pgTable, text, uniqueIndex } from "drizzle-orm/pg-core";
import { brokerColumn, ts } from "./columns.ts";

/**
 * Alerts with a lifecycle: at most one open alert per (kind, subject) — the
 * partial unique index makes that hold even with several collectors — updated
 * while the condition lasts, resolved when it clears, then kept as history.
 */
export const alerts = pgTable(
  "alerts",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    kind: text("kind").notNull(),
    /** A hostname, task id, queue, schedule name or "collector", by kind. */
    subject: text("subject").notNull(),
    severity: text("severity").notNull(),
    status: text("status").notNull(),
    summary: text("summary").notNull(),
    details: jsonb("details").$type<Record<string, unknown>>().notNull(),
    openedAt: ts("opened_at").notNull(),
    updatedAt: ts("updated_at").notNull(),
    resolvedAt: ts("resolved_at"),
    /** The broker the alert is about (each broker's detector judges its own). */
    broker: brokerColumn(),
  },
  (t) => [
    uniqueIndex("alerts_open_idx").on(t.kind, t.subject, t.broker).where(sql`status = 'open'`),
    index("alerts_recent_idx").on(t.openedAt.desc(), t.id.desc()),
    index("alerts_subject_idx").on(t.subject),
  ],
);

/** Periodic tasks: learned from steady arrivals, or declared in configuration. */
export const schedules = pgTable("schedules", {
  name: text("name").primaryKey(),
  task: text("task").notNull(),
  expectedIntervalS: doublePrecision("expected_interval_s"),
  cron: text("cron"),
  source: text("source").notNull(),
  lastSeenAt: ts("last_seen_at"),
  nextDueAt: ts("next_due_at"),
  status: text("status").notNull(),
  updatedAt: ts("updated_at").notNull(),
  /** The broker whose tasks it was learned from (declared ones: the first broker). */
  broker: brokerColumn(),
});
