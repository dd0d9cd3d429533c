/**
 * Prometheus metrics. Crisper's own (`crisper_*`: the collector's and the
 * detector's health) and celery-exporter's names where they overlap: task
 * counters and runtimes are counted by the collector as events arrive; worker
 * and queue gauges are read from the store at scrape time (api/metrics.ts),
 * so any web process agrees.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export const registry = new Registry();

/** What the collector holds, read at scrape time (set by the collector). */
export interface BacklogSizes {
  bufferMessages: number;
  bufferBytes: number;
  spoolMessages: number;
  spoolBytes: number;
}
let backlogProbe: (() => BacklogSizes) | null = null;
export function observeBacklog(probe: (() => BacklogSizes) | null): void {
  backlogProbe = probe;
}

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
    help: "Messages or events that could not be used, by reason (not_json, unsupported_serializer, unknown_event_type, decoder_error, …).",
    labelNames: ["reason"] as const,
    registers: [registry],
  }),
  fieldsDropped: new Counter({
    name: "crisper_event_fields_dropped_total",
    help: "Fields taken out of events that were kept, by field and reason: a timestamp before 2000 or over a day ahead (the event is dated when received), a retries, pid, active or processed that is not a 32-bit integer.",
    labelNames: ["field", "reason"] as const,
    registers: [registry],
  }),
  bufferDropped: new Counter({
    name: "crisper_buffer_dropped_total",
    help: "Messages dropped because the buffer between broker and database was full, and the spool on disk too (the database is too slow or down).",
    registers: [registry],
  }),
  bufferMessages: new Gauge({
    name: "crisper_buffer_messages",
    help: "Messages waiting in memory between the broker socket and the database.",
    registers: [registry],
    collect() {
      this.set(backlogProbe?.().bufferMessages ?? 0);
    },
  }),
  bufferBytes: new Gauge({
    name: "crisper_buffer_bytes",
    help: "Bytes of raw messages waiting in memory between the broker socket and the database (bounded by COLLECTOR_BUFFER_MB).",
    registers: [registry],
    collect() {
      this.set(backlogProbe?.().bufferBytes ?? 0);
    },
  }),
  spoolMessages: new Gauge({
    name: "crisper_spool_messages",
    help: "Messages waiting in the spool on disk (DATA_DIR/spool), where they go while the memory buffer is full.",
    registers: [registry],
    collect() {
      this.set(backlogProbe?.().spoolMessages ?? 0);
    },
  }),
  spoolBytes: new Gauge({
    name: "crisper_spool_bytes",
    help: "Bytes the spool holds on disk (bounded by SPOOL_MAX_MB).",
    registers: [registry],
    collect() {
      this.set(backlogProbe?.().spoolBytes ?? 0);
    },
  }),
  spooled: new Counter({
    name: "crisper_spooled_messages_total",
    help: "Messages written to the spool on disk because the memory buffer was full (or was spilling already).",
    registers: [registry],
  }),
  storeWritable: new Gauge({
    name: "crisper_store_writable",
    help: "Collecting processes: 1 while the collector's writes succeed, 0 from a failed write until one succeeds again (a database outage).",
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

export const detectorMetrics = {
  passes: new Counter({
    name: "crisper_detector_passes_total",
    help: "Detection passes finished, failed ones included (crisper_detector_pass_failures_total counts those).",
    registers: [registry],
  }),
  passFailures: new Counter({
    name: "crisper_detector_pass_failures_total",
    help: "Detection passes that failed (the database or the broker could not be read); retried every DETECT_INTERVAL_S.",
    registers: [registry],
  }),
};

export const loopMetrics = {
  errors: new Counter({
    name: "crisper_loop_errors_total",
    help: "Unexpected errors in a background loop (logged with their stack; the loop goes on), by loop.",
    labelNames: ["loop"] as const,
    registers: [registry],
  }),
};

/**
 * Task names and hostnames are attacker-controlled label values: past this
 * many distinct label sets a counter records under name="other" instead of
 * growing without bound.
 */
export const MAX_LABEL_SETS = 2000;

/**
 * `broker`: the watched broker's name (BROKERS). Left out for BROKER_URL
 * alone (the broker named "default"), so a one-broker Crisper's series are
 * celery-exporter's exactly.
 */
const TASK_LABELS = ["name", "hostname", "queue_name", "broker"] as const;
const taskCounter = (type: string) =>
  new Counter({
    name: `celery_task_${type}_total`,
    help: `Tasks ${type}, from task-${type} events.`,
    labelNames: TASK_LABELS,
    registers: [registry],
  });

export const celeryMetrics = {
  sent: taskCounter("sent"),
  received: taskCounter("received"),
  started: taskCounter("started"),
  succeeded: taskCounter("succeeded"),
  failed: taskCounter("failed"),
  retried: taskCounter("retried"),
  revoked: taskCounter("revoked"),
  rejected: taskCounter("rejected"),
  runtime: new Histogram({
    name: "celery_task_runtime",
    help: "Task runtime in seconds, from task-succeeded events.",
    labelNames: TASK_LABELS,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  }),
};

const labelSets = new Set<string>();
/** Bounded label values for a task metric. */
/** The `broker` label of a series: none for the one broker of BROKER_URL alone. */
export function brokerLabel(broker: string): { broker?: string } {
  return broker === "default" ? {} : { broker };
}

export function taskLabels(name: string | null, hostname: string, queue: string | null, broker = "default") {
  const labels = { name: name ?? "unknown", hostname, queue_name: queue ?? "unknown", ...brokerLabel(broker) };
  const key = `${labels.name}\u0000${labels.hostname}\u0000${labels.queue_name}\u0000${broker}`;
  if (labelSets.has(key)) return labels;
  if (labelSets.size >= MAX_LABEL_SETS) return { name: "other", hostname: "other", queue_name: "other", ...brokerLabel(broker) };
  labelSets.add(key);
  return labels;
}

export const slackMetrics = {
  posts: new Counter({ name: "crisper_slack_posts_total", help: "Messages posted to Slack (alerts, groups, resolutions).", registers: [registry] }),
  postFailures: new Counter({
    name: "crisper_slack_post_failures_total",
    help: "Slack posts that failed and were kept to be tried again.",
    registers: [registry],
  }),
  pending: new Gauge({ name: "crisper_slack_alerts_pending", help: "Alerts waiting to be posted to Slack.", registers: [registry] }),
  commands: new Counter({
    name: "crisper_slack_commands_total",
    help: "/celery commands answered, by command.",
    labelNames: ["command"] as const,
    registers: [registry],
  }),
};

export const retentionMetrics = {
  deleted: new Counter({
    name: "crisper_retention_deleted_total",
    help: "Rows deleted by the retention pass, by kind (tasks, events, alerts, and the statistics' own).",
    labelNames: ["kind"] as const,
    registers: [registry],
  }),
};
