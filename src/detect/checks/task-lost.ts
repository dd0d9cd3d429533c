/**
 * task_lost: a task RECEIVED or STARTED on a worker that died or restarted
 * under it will not finish there. Which tasks are lost is decided in
 * worker-death.ts.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import type { WorkerDeath } from "./worker-death.ts";
import { iso, taskLabel } from "./summary.ts";

export function taskLostAlerts(death: WorkerDeath): AlertSpec[] {
  return death.lost.map(({ task: t, worker: w, diedAt }) => ({
    kind: "task_lost",
    subject: t.id,
    summary: `${taskLabel(t)} was ${t.state} on ${w.hostname}, which ${diedAt !== null ? "died" : "restarted"}: it will not finish there.`,
    details: {
      task_id: t.id,
      name: t.name,
      worker: w.hostname,
      state: t.state,
      received_at: iso(t.receivedAt),
      started_at: iso(t.startedAt),
      worker_died_at: iso(diedAt ?? w.onlineAt),
      still_unacked: death.unacked ? death.unacked.has(t.id) : null,
    },
  }));
}
