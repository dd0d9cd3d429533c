/**
 * Crisper's own Prometheus metrics (the collector's health). Celery-shaped
 * metrics (celery_task_*, celery_worker_up, celery_queue_length) are in
 * api/metrics.ts, computed from the store so every web process agrees.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export const registry = new Registry();

export const collectorMetrics = {
  messagesReceived: new Counter({
    name: "crisper_messages_received_total",
    help: "Messages received from the broker, by stream (events, result-backend).",
    labelNames: ["stream"] as const,
    registers: [registry],
  }),
  eventsDecoded: new Counter({
    name: "crisper_events_decoded_total",
    help: "Celery events decoded, by type.",
    labelNames: ["type"] as const,
    registers: [registry],
  }),
  messagesRejected: new Counter({
    name: "crisper_messages_rejected_total",
    help: "Messages or events that could not be used, by reason (not_json, unsupported_serializer, unknown_event_type, …).",
    labelNames: ["reason"] as const,
    registers: [registry],
  }),
  bufferDropped: new Counter({
    name: "crisper_buffer_dropped_total",
    help: "Messages dropped because the buffer between broker and database was full (the database is too slow or down).",
    registers: [registry],
  }),
  bufferMessages: new Gauge({
    name: "crisper_buffer_messages",
    help: "Messages waiting between the broker socket and the database.",
    registers: [registry],
  }),
  storeBatches: new Counter({ name: "crisper_store_batches_total", help: "Batches written.", registers: [registry] }),
  storeErrors: new Counter({
    name: "crisper_store_errors_total",
    help: "Failed batch writes (retried), by kind.",
    labelNames: ["kind"] as const,
    registers: [registry],
  }),
  storeRejected: new Counter({
    name: "crisper_store_rejected_events_total",
    help: "Events the database refused even alone (logged with the reason).",
    registers: [registry],
  }),
  batchSeconds: new Histogram({
    name: "crisper_store_batch_seconds",
    help: "Time to write one batch.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  }),
  lagSeconds: new Histogram({
    name: "crisper_event_lag_seconds",
    help: "From arrival at the collector to committed in the store.",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
  streamDisconnects: new Counter({
    name: "crisper_stream_disconnects_total",
    help: "Times the event stream subscription dropped.",
    registers: [registry],
  }),
};
