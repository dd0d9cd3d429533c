/**
 * Turns a run of decoded events into one store batch: every task event kept,
 * one merged patch per task and per worker. Pure.
 */
import type { CeleryEvent } from "../celery/event.ts";
import { eventKey, eventRow, type EventRow } from "../state/event-row.ts";
import { taskPatchesFromEvents } from "../state/task-patch.ts";
import { workerPatchesFromEvents } from "../state/worker.ts";
import type { Batch, WorkerEventRow } from "../store/writes.ts";

export function buildBatch(events: readonly CeleryEvent[]): Batch {
  const eventRows: EventRow[] = [];
  const workerEvents: WorkerEventRow[] = [];
  for (const e of events) {
    const row = eventRow(e);
    if (row) eventRows.push(row);
    // Heartbeats only refresh the worker row; its life-cycle is kept as events.
    else if (e.type === "worker-online" || e.type === "worker-offline") {
      workerEvents.push({
        hostname: e.hostname,
        key: eventKey(e),
        type: e.type,
        timestamp: e.timestamp,
        localReceived: e.localReceived,
        fields: e.fields,
      });
    }
  }
  return {
    events: eventRows,
    tasks: [...taskPatchesFromEvents(events).values()],
    workers: [...workerPatchesFromEvents(events).values()],
    workerEvents,
  };
}
