/** The broker's health samples: the latest, and a window of history (the /broker page, /metrics, the detector). */
import { and, desc, eq, gte } from "drizzle-orm";
import type { Database } from "../database.ts";
import { brokerSamples } from "../schema/index.ts";

export type BrokerSampleRow = typeof brokerSamples.$inferSelect;

/** The newest sample of each broker (a handful of brokers at most). */
export async function latestBrokerSamples(database: Database): Promise<BrokerSampleRow[]> {
  return database.db
    .selectDistinctOn([brokerSamples.broker])
    .from(brokerSamples)
    .orderBy(brokerSamples.broker, desc(brokerSamples.sampledAt))
    .limit(100);
}

/** One broker's samples since `since`, oldest first, at most `limit` (the newest of them). */
export async function brokerHistory(database: Database, broker: string, since: Date, limit = 2000): Promise<BrokerSampleRow[]> {
  const rows = await database.db
    .select()
    .from(brokerSamples)
    .where(and(eq(brokerSamples.broker, broker), gte(brokerSamples.sampledAt, since)))
    .orderBy(desc(brokerSamples.sampledAt))
    .limit(limit);
  return rows.reverse();
}


/** Each broker's latest sample with its history since `since` (the /broker page and GET /api/broker). */
export async function brokersWithHistory(database: Database, since: Date): Promise<{ latest: BrokerSampleRow; history: BrokerSampleRow[] }[]> {
  const latest = await latestBrokerSamples(database);
  return Promise.all(latest.map(async (l) => ({ latest: l, history: await brokerHistory(database, l.broker, since, 1000) })));
}
