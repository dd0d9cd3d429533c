import { doublePrecision, integer, jsonb, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
import { brokerColumn, ts } from "./columns.ts";

/** What one sample of a queue says: kept as history, and as the queue's latest. */
function sampleColumns() {
  return {
    depth: integer("depth").notNull(),
    byPriority: jsonb("by_priority").$type<Record<string, number>>().notNull(),
    unacked: integer("unacked").notNull(),
    oldestUnackedAgeS: doublePrecision("oldest_unacked_age_s"),
  };
}

/** Queue depth samples, kept as history (the queues page charts them). */
export const queueSamples = pgTable(
  "queue_samples",
  {
    broker: brokerColumn(),
    queue: text("queue").notNull(),
    sampledAt: ts("sampled_at").notNull(),
    ...sampleColumns(),
  },
  (t) => [primaryKey({ name: "queue_samples_pkey", columns: [t.broker, t.queue, t.sampledAt] })],
);

/**
 * Every queue ever seen on each broker (both may have a `celery` queue), with
 * its latest sample (so listing queues never scans history).
 */
export const queues = pgTable(
  "queues",
  {
    broker: brokerColumn(),
    name: text("name").notNull(),
    ...sampleColumns(),
    sampledAt: ts("sampled_at").notNull(),
    firstSeenAt: ts("first_seen_at").notNull(),
  },
  (t) => [primaryKey({ name: "queues_pkey", columns: [t.broker, t.name] })],
);
