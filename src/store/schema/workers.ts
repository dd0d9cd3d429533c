import { doublePrecision, integer, jsonb, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
import { brokerColumn, ts } from "./columns.ts";

/**
 * One row per worker node name on each broker (two clusters may both have a
 * celery@web1); liveness is computed from it (state/worker.ts).
 */
export const workers = pgTable(
  "workers",
  {
  broker: brokerColumn(),
  hostname: text("hostname").notNull(),
  /** Collector's clock at the latest sign of life (heartbeat or task event). */
  lastHeartbeatAt: ts("last_heartbeat_at"),
  /** Sender's timestamp of the worker event the stats below come from. */
  statsAt: ts("stats_at"),
  freq: doublePrecision("freq"),
  active: integer("active"),
  processed: integer("processed"),
  loadavg: jsonb("loadavg").$type<number[]>(),
  pid: integer("pid"),
  swIdent: text("sw_ident"),
  swVer: text("sw_ver"),
  swSys: text("sw_sys"),
  onlineAt: ts("online_at"),
  /** A clean shutdown (worker-offline) arrived at this time. */
  offlineAt: ts("offline_at"),
  firstSeenAt: ts("first_seen_at").notNull(),
  /** What the worker said it holds when last asked over remote control (`reserved`, `active`). */
  reserved: integer("reserved"),
  reservedTasks: jsonb("reserved_tasks").$type<unknown[]>(),
  activeTasks: jsonb("active_tasks").$type<unknown[]>(),
  inspectedAt: ts("inspected_at"),
  },
  (t) => [primaryKey({ name: "workers_pkey", columns: [t.broker, t.hostname] })],
);
