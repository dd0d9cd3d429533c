/**
 * GET /metrics: the process's counters plus gauges read from the store at
 * scrape time (workers up, queue lengths, open alerts), in celery-exporter's
 * names where they overlap.
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
import { brokerLabel, registry } from "../metrics.ts";
import type { Database } from "../store/database.ts";
import { ALERT_KINDS } from "../alerts/kinds.ts";
import { countOpenAlerts } from "../alerts/store.ts";
import { latestBrokerSamples } from "../store/queries/broker.ts";
import { listQueues } from "../store/queries/queues.ts";
import { databaseBytes } from "../store/queries/size.ts";
import { listWorkers, livenessOf } from "../store/queries/workers.ts";
import { mayEvict } from "../detect/checks/broker-health.ts";

/** How long a scrape waits for the store's gauges: well inside a scrape timeout, and the 2 s a probe waits. */
export const METRICS_STORE_DEADLINE_MS = 1000;

export function createMetricsRoutes(deps: { database: Database; now?: () => number; log?: Logger }) {
  const now = deps.now ?? (() => Date.now() / 1000);
  // Gauges read from the store live in their own registry, filled at each scrape.
  const fromStore = new Registry();
  const workerUp = new Gauge({
    name: "celery_worker_up",
    help: "1 if the worker is online by Celery's heartbeat rule.",
    labelNames: ["hostname", "broker"] as const,
    registers: [fromStore],
  });
  const workerActive = new Gauge({
    name: "celery_worker_tasks_active",
    help: "Tasks the worker is running, from its latest heartbeat.",
    labelNames: ["hostname", "broker"] as const,
    registers: [fromStore],
  });
  const queueLength = new Gauge({
    name: "celery_queue_length",
    help: "Waiting messages in the queue, all priorities.",
    labelNames: ["queue_name", "broker"] as const,
    registers: [fromStore],
  });
  const queueUnacked = new Gauge({
    name: "crisper_queue_unacked",
    help: "Messages delivered to workers and not yet acknowledged.",
    labelNames: ["queue_name", "broker"] as const,
    registers: [fromStore],
  });
  const alertsOpen = new Gauge({
    name: "crisper_alerts_open",
    help: "Alerts open now, by kind (every kind, 0 when none is open).",
    labelNames: ["kind"] as const,
    registers: [fromStore],
  });

  // The broker's own health, from its latest sample (broker_samples).
  const brokerGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ["broker"] as const, registers: [fromStore] });
  const broker = {
    memory: brokerGauge("crisper_broker_memory_bytes", "Memory the broker uses (Redis used_memory, RabbitMQ mem_used)."),
    maxMemory: brokerGauge("crisper_broker_maxmemory_bytes", "The broker's memory limit: Redis maxmemory (absent: none), RabbitMQ's memory high watermark."),
    clients: brokerGauge("crisper_broker_connected_clients", "Clients connected to the broker (Redis connected_clients, RabbitMQ connections)."),
    evicted: brokerGauge("crisper_broker_evicted_keys", "Redis: keys evicted since the server started (resets on restart; use increase())."),
    ops: brokerGauge("crisper_broker_ops_per_second", "Redis instantaneous_ops_per_sec; RabbitMQ: messages published per second."),
    uptime: brokerGauge("crisper_broker_uptime_seconds", "Seconds since the broker server started."),
    evictionPossible: brokerGauge("crisper_broker_eviction_possible", "1 if Redis has a maxmemory and a maxmemory-policy other than noeviction: it may evict Celery's keys."),
    memoryAlarm: brokerGauge("crisper_broker_memory_alarm", "RabbitMQ: 1 while the memory alarm blocks publishers."),
    diskAlarm: brokerGauge("crisper_broker_disk_alarm", "RabbitMQ: 1 while the disk alarm blocks publishers."),
    sampledAt: brokerGauge("crisper_broker_sampled_timestamp_seconds", "When the broker's health was last sampled, unix seconds."),
  };
  const brokerInfo = new Gauge({
    name: "crisper_broker_info",
    help: "Always 1: the broker's kind, version and maxmemory_policy as labels.",
    labelNames: ["broker", "kind", "version", "maxmemory_policy"] as const,
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
    help: "1 if the database did not answer within 1 s at this scrape, so the gauges read from it (celery_worker_*, celery_queue_length, crisper_queue_unacked, crisper_alerts_open, crisper_broker_*) are left out.",
    registers: [scrape],
  });

  const routes = new Hono<Env>();
  routes.get("/metrics", async (c) => {
    const t = now();
    const read = await within(
      METRICS_STORE_DEADLINE_MS,
      Promise.all([listWorkers(deps.database), listQueues(deps.database), countOpenAlerts(deps.database), latestBrokerSamples(deps.database), databaseBytes(deps.database)]),
    ).catch((e: unknown) => {
      deps.log?.once("metrics-stale", `/metrics: the database did not answer (${errorText(e)}); its gauges are left out while it does not`);
      return null;
    });
    stale.set(read ? 0 : 1);
    // Set in one go, after both reads: concurrent scrapes do not mix their rows.
    workerUp.reset();
    workerActive.reset();
    queueLength.reset();
    queueUnacked.reset();
    alertsOpen.reset();
    for (const g of Object.values(broker)) g.reset();
    brokerInfo.reset();
    databaseSize.reset();
    if (read) {
      const [workers, queues, open, brokers, dbBytes] = read;
      databaseSize.set(dbBytes);
      for (const w of workers) {
        const live = livenessOf(w, t);
        workerUp.set({ hostname: w.hostname, ...brokerLabel(w.broker) }, live.status === "online" ? 1 : 0);
        workerActive.set({ hostname: w.hostname, ...brokerLabel(w.broker) }, live.status === "online" ? (w.active ?? 0) : 0);
      }
      for (const q of queues) {
        queueLength.set({ queue_name: q.name, ...brokerLabel(q.broker) }, q.depth);
        queueUnacked.set({ queue_name: q.name, ...brokerLabel(q.broker) }, q.unacked);
      }
      // Every kind, so a dashboard or a rule sees 0 rather than no series.
      for (const kind of Object.keys(ALERT_KINDS)) alertsOpen.set({ kind }, 0);
      for (const { kind, open: n } of open) alertsOpen.set({ kind }, n);
      for (const b of brokers) {
        const l = { broker: b.broker };
        const set = (g: Gauge<"broker">, v: number | boolean | null) => {
          if (v !== null) g.set(l, Number(v));
        };
        set(broker.memory, b.usedMemoryBytes);
        set(broker.maxMemory, b.maxMemoryBytes);
        set(broker.clients, b.connectedClients);
        set(broker.evicted, b.evictedKeys);
        set(broker.ops, b.opsPerSecond);
        set(broker.uptime, b.uptimeS);
        if (b.kind === "redis") set(broker.evictionPossible, mayEvict(b));
        set(broker.memoryAlarm, b.memoryAlarm);
        set(broker.diskAlarm, b.diskAlarm);
        set(broker.sampledAt, b.sampledAt.getTime() / 1000);
        brokerInfo.set({ broker: b.broker, kind: b.kind, version: b.version ?? "", maxmemory_policy: b.maxMemoryPolicy ?? "" }, 1);
      }
    }
    const text = (await registry.metrics()) + (await scrape.metrics()) + (read ? await fromStore.metrics() : "");
    return c.text(text, 200, { "content-type": registry.contentType });
  });
  return routes;
}
