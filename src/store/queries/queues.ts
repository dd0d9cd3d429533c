import { and, asc, desc, eq, gte } from "drizzle-orm";
import type { Database } from "../database.ts";
import { queueSamples, queues } from "../schema/index.ts";

export type QueueRow = typeof queues.$inferSelect;
export type QueueSampleRow = typeof queueSamples.$inferSelect;

/** Every queue, or one broker's. */
export async function listQueues(database: Database, broker?: string): Promise<QueueRow[]> {
  return database.db
    .select()
    .from(queues)
    .where(broker ? eq(queues.broker, broker) : undefined)
    .orderBy(asc(queues.name), asc(queues.broker))
    .limit(5000);
}

/** A queue's samples since a time, oldest first (for charts), bounded. */
export async function queueHistory(database: Database, name: string, since: Date, limit = 2000, broker = "default"): Promise<QueueSampleRow[]> {
  const rows = await database.db
    .select()
    .from(queueSamples)
    .where(and(eq(queueSamples.broker, broker), eq(queueSamples.queue, name), gte(queueSamples.sampledAt, since)))
    .orderBy(desc(queueSamples.sampledAt))
    .limit(limit);
  return rows.reverse();
}
