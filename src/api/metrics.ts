/**
 * GET /metrics: the process's counters plus gauges read from the store at
 * scrape time (workers up, queue lengths), in celery-exporter's names.
 *
 * A scrape must answer while the database is down: that is when the
 * collector's own metrics (buffer, drops, store errors) matter most. So the
 * store is given a short deadline; past it, or if it refuses, its gauges
 * are left out of this scrape and `crisper_metrics_stale` says so.
 */
import { Hono } from "hono";
import { Gauge, Registry } from "prom-client";
import type { Env } from "../http/context.ts";
import { within } from "../http/deadline.ts";
import { type Logger, errorText } from "../log.ts";
import { registry } from "../metrics.ts";
import type { Database } from "../store/database.ts";
import { listQueues } from "../store/queries/queues.ts";
import { databaseBytes } from "../store/queries/size.ts";
import { listWorkers, livenessOf } from "../store/queries/workers.ts";

/** How long a scrape waits for the store's gauges: well inside a scrape timeout, and the 2 s a probe waits. */
export const METRICS_STORE_DEADLINE_MS = 1000;

export function createMetricsRoutes(deps: { database: Database; now?: () => number; log?: Logger }) {
  const now = deps.now ?? (() => Date.now() / 1000);
  // Gauges read from the store live in their own registry, filled at each scrape.
  const fromStore = new Registry();
  const workerUp = new Gauge({
    name: "celery_worker_up",
    help: "1 if the worker is online by Celery's heartbeat rule.",
    labelNames: ["hostname"] as const,
    registers: [fromStore],
  });
  const workerActive = new Gauge({
    name: "celery_worker_tasks_active",
    help: "Tasks the worker is running, from its latest heartbeat.",
    labelNames: ["hostname"] as const,
    registers: [fromStore],
  });
  const queueLength = new Gauge({
    name: "celery_queue_length",
    help: "Waiting messages in the queue, all priorities.",
    labelNames: ["queue_name"] as const,
    registers: [fromStore],
  });
  const queueUnacked = new Gauge({
    name: "crisper_queue_unacked",
    help: "Messages delivered to workers and not yet acknowledged.",
    labelNames: ["queue_name"] as const,
    registers: [fromStore],
  });

  const databaseSize = new Gauge({
    name: "crisper_database_bytes",
    help: "The database's size on disk, bytes (pg_database_size).",
    registers: [fromStore],
  });

  // Whether the store's gauges are in this scrape: its own registry, written at every scrape.
  const scrape = new Registry();
  const stale = new Gauge({
    name: "crisper_metrics_stale",
    help: "1 if the database did not answer within 1 s at this scrape, so the gauges read from it (celery_worker_*, celery_queue_length, crisper_queue_unacked) are left out.",
    registers: [scrape],
  });

  const routes = new Hono<Env>();
  routes.get("/metrics", async (c) => {
    const t = now();
    const read = await within(METRICS_STORE_DEADLINE_MS, Promise.all([listWorkers(deps.database), listQueues(deps.database), databaseBytes(deps.database)])).catch((e: unknown) => {
      deps.log?.once("metrics-stale", `/metrics: the database did not answer (${errorText(e)}); its gauges are left out while it does not`);
      return null;
    });
    stale.set(read ? 0 : 1);
    // Set in one go, after both reads: concurrent scrapes do not mix their rows.
    workerUp.reset();
    workerActive.reset();
    queueLength.reset();
    queueUnacked.reset();
    databaseSize.reset();
    if (read) {
      const [workers, queues, dbBytes] = read;
      databaseSize.set(dbBytes);
      for (const w of workers) {
        const live = livenessOf(w, t);
        workerUp.set({ hostname: w.hostname }, live.status === "online" ? 1 : 0);
        workerActive.set({ hostname: w.hostname }, live.status === "online" ? (w.active ?? 0) : 0);
      }
      for (const q of queues) {
        queueLength.set({ queue_name: q.name }, q.depth);
        queueUnacked.set({ queue_name: q.name }, q.unacked);
      }
    }
    const text = (await registry.metrics()) + (await scrape.metrics()) + (read ? await fromStore.metrics() : "");
    return c.text(text, 200, { "content-type": registry.contentType });
  });
  return routes;
}
