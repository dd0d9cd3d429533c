/**
 * worker_offline: a worker stopped sending heartbeats without shutting down.
 * Which workers are dead is decided in worker-death.ts.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import type { WorkerDeath } from "./worker-death.ts";
import { iso } from "./summary.ts";

export function workerOfflineAlerts(death: WorkerDeath): AlertSpec[] {
  return [...death.dead].map(([hostname, { worker: w, diedAt }]) => ({
    kind: "worker_offline",
    subject: hostname,
    summary: `Worker ${hostname} stopped sending heartbeats at ${iso(w.lastHeartbeatAt)} without shutting down: it died (killed, out of memory, or its host is gone).`,
    details: { last_heartbeat_at: iso(w.lastHeartbeatAt), declared_dead_at: iso(diedAt), freq_s: w.freq },
  }));
}
