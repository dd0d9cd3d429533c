import { integer, index, pgTable, primaryKey, smallint, text } from "drizzle-orm/pg-core";
import { ts } from "./columns.ts";

/**
 * Per task name, queue and minute: how many tasks reached each outcome, and
 * their runtimes and waits as log-scale histograms (stats/histogram.ts), so
 * hours and days are sums of minutes and their percentiles are exact to the
 * bin. Rebuilt from the tasks table (stats/rollup.ts), never incremented, so
 * replays and several collectors cannot count twice; kept after the tasks
 * themselves are deleted (STATS_RETENTION).
 *
 * A task counts in the minute of its outcome (finished_at; for a task that is
 * waiting to be retried, its latest event): succeeded, failed, revoked or
 * expired (revoked because its `expires` passed; not counted in `revoked`);
 * `retried` counts the retries of the tasks whose outcome falls in the minute.
 */
export const taskStats = pgTable(
  "task_stats",
  {
    minute: ts("minute").notNull(),
    name: text("name").notNull(),
    /** "" when the task's queue is not known. */
    queue: text("queue").notNull(),
    succeeded: integer("succeeded").notNull(),
    failed: integer("failed").notNull(),
    retried: integer("retried").notNull(),
    revoked: integer("revoked").notNull(),
    expired: integer("expired").notNull(),
    /** Runtimes (succeeded and failed tasks), seconds, as histogram bins and their counts. */
    runtimeBins: smallint("runtime_bins").array().notNull(),
    runtimeCounts: integer("runtime_counts").array().notNull(),
    /** Waits from sent (or received) to started, the same way. */
    waitBins: smallint("wait_bins").array().notNull(),
    waitCounts: integer("wait_counts").array().notNull(),
  },
  (t) => [
    primaryKey({ name: "task_stats_pkey", columns: [t.name, t.minute, t.queue] }),
    // Every name over a window (/task-names), and pruning by age.
    index("task_stats_minute_idx").on(t.minute),
  ],
);

/**
 * Buckets of task_stats to rebuild: the writer marks a task's bucket in the
 * same transaction that changes the task (before and after, so a bucket the
 * task leaves is rebuilt too); the rollup rebuilds each and deletes its mark.
 * `marked_at` is rewritten on every mark, which locks the row until the
 * writer commits: a rollup never takes a mark whose task change it cannot see.
 */
export const taskStatsDirty = pgTable(
  "task_stats_dirty",
  {
    minute: ts("minute").notNull(),
    name: text("name").notNull(),
    queue: text("queue").notNull(),
    markedAt: ts("marked_at").notNull(),
  },
  (t) => [primaryKey({ name: "task_stats_dirty_pkey", columns: [t.minute, t.name, t.queue] })],
);
