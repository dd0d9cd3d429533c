/**
 * Counts task events into celery-exporter's metrics. Only task-sent and
 * task-received carry the task's name, so names are remembered per task id in
 * a bounded cache (oldest forgotten first), as celery-exporter does.
 */
import type { CeleryEvent } from "../celery/event.ts";
import { celeryMetrics, taskLabels } from "../metrics.ts";

const COUNTER_OF: Record<string, keyof typeof celeryMetrics> = {
  "task-sent": "sent",
  "task-received": "received",
  "task-started": "started",
  "task-succeeded": "succeeded",
  "task-failed": "failed",
  "task-retried": "retried",
  "task-revoked": "revoked",
  "task-rejected": "rejected",
};

export class TaskMetrics {
  private names = new Map<string, { name: string | null; queue: string | null }>();
  constructor(private readonly cacheSize = 100_000) {}

  count(e: CeleryEvent): void {
    if (!e.uuid || e.source !== "events") return;
    const counter = COUNTER_OF[e.type];
    if (!counter) return;
    let known = this.names.get(e.uuid);
    const name = typeof e.fields.name === "string" ? e.fields.name : null;
    const queue = typeof e.fields.queue === "string" ? e.fields.queue : null;
    if (name || queue) {
      known = { name: name ?? known?.name ?? null, queue: queue ?? known?.queue ?? null };
      this.names.delete(e.uuid);
      this.names.set(e.uuid, known);
      if (this.names.size > this.cacheSize) this.names.delete(this.names.keys().next().value as string);
    }
    const labels = taskLabels(known?.name ?? null, e.hostname, known?.queue ?? null);
    if (counter === "runtime") return;
    celeryMetrics[counter].inc(labels);
    if (e.type === "task-succeeded" && typeof e.fields.runtime === "number") celeryMetrics.runtime.observe(labels, e.fields.runtime);
  }
}
