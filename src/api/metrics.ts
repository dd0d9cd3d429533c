/**
 * GET /metrics: the process's counters plus gauges read from the store at
 * scrape time (workers up, queue lengths), in celery-exporter's names.
 */
import { Hono } from "hono";
import { Gauge, Registry } from "prom-client";
import type { Env } from "../http/context.ts";
import { registry } from "../metrics.ts";
import type { Database } from "../store/database.ts";
import { listQueues } from "../store/queries/queues.ts";
import { listWorkers, livenessOf } from "../store/queries/workers.ts";

export function createMetricsRoutes(deps: { database: Database; now?: () => number }) {
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

  const routes = new Hono<Env>();
  routes.get("/metrics", async (c) => {
    const t = now();
    workerUp.reset();
    workerActive.reset();
    for (const w of await listWorkers(deps.database)) {
      const live = livenessOf(w, t);
      workerUp.set({ hostname: w.hostname }, live.status === "online" ? 1 : 0);
      workerActive.set({ hostname: w.hostname }, live.status === "online" ? (w.active ?? 0) : 0);
    }
    queueLength.reset();
    queueUnacked.reset();
    for (const q of await listQueues(deps.database)) {
      queueLength.set({ queue_name: q.name }, q.depth);
      queueUnacked.set({ queue_name: q.name }, q.unacked);
    }
    const text = (await registry.metrics()) + (await fromStore.metrics());
    return c.text(text, 200, { "content-type": registry.contentType });
  });
  return routes;
}

