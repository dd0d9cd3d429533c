/**
 * Counts task events into celery-exporter's metrics. Only task-sent and
 * task-received carry the task's name, so names are remembered per task id in
 * a bounded cache (oldest forgotten first), as celery-exporter does.
 */
import type { CeleryEvent } from "../celery/event.ts";
import { celeryMetrics, taskLabels } from "../metrics.ts";

type CounterName = Exclude<keyof typeof celeryMetrics, "runtime">;
const COUNTER_OF: Record<string, CounterName> = {
  "task-sent": "sent",
  "task-received": "received",
  "task-started": "started",
  "task-succeeded": "succeeded",
  "task-failed": "failed",
  "task-retried": "retried",
  "task-revoked": "revoked",
  "task-rejected": "rejected",
};

/**
 * prom-client hashes label sets on every call, which at tens of thousands of
 * events a second costs more than the rest of the collector: counts are
 * summed per batch and added once per label set.
 */
export class TaskMetrics {
  private names = new Map<string, { name: string | null; queue: string | null }>();
  constructor(
    private readonly cacheSize = 100_000,
    /** The broker these events come from: a label of every count. */
    private readonly broker = "default",
  ) {}

  countBatch(events: readonly CeleryEvent[]): void {
    const counts = new Map<string, { counter: CounterName; labels: ReturnType<typeof taskLabels>; n: number; runtimes: number[] }>();
    for (const e of events) {
      if (!e.uuid || e.source !== "events") continue;
      const counter = COUNTER_OF[e.type];
      if (!counter) continue;
      let known = this.names.get(e.uuid);
      const name = typeof e.fields.name === "string" ? e.fields.name : null;
      const queue = typeof e.fields.queue === "string" ? e.fields.queue : null;
      if (name || queue) {
        known = { name: name ?? known?.name ?? null, queue: queue ?? known?.queue ?? null };
        this.names.delete(e.uuid);
        this.names.set(e.uuid, known);
        if (this.names.size > this.cacheSize) this.names.delete(this.names.keys().next().value as string);
      }
      const labels = taskLabels(known?.name ?? null, e.hostname, known?.queue ?? null, this.broker);
      const key = `${counter}\u0000${labels.name}\u0000${labels.hostname}\u0000${labels.queue_name}`;
      let entry = counts.get(key);
      if (!entry) {
        entry = { counter, labels, n: 0, runtimes: [] };
        counts.set(key, entry);
      }
      entry.n++;
      if (e.type === "task-succeeded" && typeof e.fields.runtime === "number") entry.runtimes.push(e.fields.runtime);
    }
    for (const { counter, labels, n, runtimes } of counts.values()) {
      celeryMetrics[counter].inc(labels, n);
      if (runtimes.length) {
        const child = celeryMetrics.runtime.labels(labels);
        for (const r of runtimes) child.observe(r);
      }
    }
  }
}
