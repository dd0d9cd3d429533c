import { bigint, index, jsonb, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
import type { WorkerSettings } from "../../celery/worker-config.ts";
import type { ConfigFinding } from "../../detect/config-findings.ts";
import { ts } from "./columns.ts";

/**
 * What each worker last said of its configuration over remote control
 * (`conf`, `stats`, `registered`; detect/read-config.ts), and the findings
 * the config_risk check made of it (detect/checks/config-risk.ts).
 */
export const workerConfigs = pgTable("worker_configs", {
  hostname: text("hostname").primaryKey(),
  /** When the replies came (collector's clock). */
  readAt: ts("read_at").notNull(),
  /** The worker's `online_at` then: a worker that came online since has not been read yet. */
  workerOnlineAt: ts("worker_online_at"),
  /** A bounded subset of the replies (celery/worker-config.ts), never the whole dump. */
  config: jsonb("config").$type<WorkerSettings>().notNull(),
  /** Risks (config_risk alerts) and advice; empty until the check has looked. */
  findings: jsonb("findings").$type<ConfigFinding[]>().notNull().default([]),
  findingsAt: ts("findings_at"),
});

/** The peak resident memory (`rusage.maxrss`) each reading reported: the worker page's memory chart. */
export const workerMemorySamples = pgTable(
  "worker_memory_samples",
  {
    hostname: text("hostname").notNull(),
    at: ts("at").notNull(),
    maxrssKb: bigint("maxrss_kb", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.hostname, t.at] }), index("worker_memory_samples_at_idx").on(t.at)],
);
