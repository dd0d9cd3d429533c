import { doublePrecision, integer, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/** Queue depth samples, kept as history (the queues page charts them). */
export const queueSamples = pgTable(
  "queue_samples",
  {
    queue: text("queue").notNull(),
    sampledAt: timestamp("sampled_at", { withTimezone: true, mode: "date" }).notNull(),
    depth: integer("depth").notNull(),
    byPriority: jsonb("by_priority").$type<Record<string, number>>().notNull(),
    unacked: integer("unacked").notNull(),
    oldestUnackedAgeS: doublePrecision("oldest_unacked_age_s"),
  },
  (t) => [primaryKey({ name: "queue_samples_pkey", columns: [t.queue, t.sampledAt] })],
);
