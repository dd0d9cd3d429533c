import { bigint, boolean, doublePrecision, integer, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
import { ts } from "./columns.ts";

/**
 * The broker's own health, one row per sample (broker/port.ts BrokerHealth):
 * memory against its limit, the eviction policy, clients, throughput. A
 * short history only (the /broker page's chart and the detector's window):
 * the collector prunes rows past BROKER_HEALTH_KEEP_S as it writes.
 */
export const brokerSamples = pgTable(
  "broker_samples",
  {
    /** Which broker: "default" while Crisper watches one. */
    broker: text("broker").notNull(),
    sampledAt: ts("sampled_at").notNull(),
    /** "redis" or "rabbitmq". */
    kind: text("kind").notNull(),
    version: text("version"),
    uptimeS: doublePrecision("uptime_s"),
    usedMemoryBytes: bigint("used_memory_bytes", { mode: "number" }),
    /** Redis `maxmemory` (0 or null: no limit); RabbitMQ's memory high watermark. */
    maxMemoryBytes: bigint("max_memory_bytes", { mode: "number" }),
    maxMemoryPolicy: text("max_memory_policy"),
    connectedClients: integer("connected_clients"),
    opsPerSecond: doublePrecision("ops_per_second"),
    /** Redis `evicted_keys`: keys evicted since the server started. */
    evictedKeys: bigint("evicted_keys", { mode: "number" }),
    memoryAlarm: boolean("memory_alarm"),
    diskAlarm: boolean("disk_alarm"),
    diskFreeBytes: bigint("disk_free_bytes", { mode: "number" }),
  },
  (t) => [primaryKey({ name: "broker_samples_pkey", columns: [t.broker, t.sampledAt] })],
);
