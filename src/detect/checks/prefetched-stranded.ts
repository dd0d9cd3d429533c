/**
 * prefetched_stranded: messages a dead worker had prefetched (reserved) sit
 * unacknowledged in the broker until the visibility timeout hands them back.
 * Which workers are dead is decided in worker-death.ts.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import type { DetectConfig } from "../config.ts";
import type { WorkerDeath } from "./worker-death.ts";
import { iso } from "./summary.ts";

/** `visibilityTimeouts`: a worker's own visibility timeout, where it reported one (BROKER_VISIBILITY_TIMEOUT otherwise). */
export function prefetchedStrandedAlerts(death: WorkerDeath, cfg: DetectConfig, visibilityTimeouts: ReadonlyMap<string, number> = new Map()): AlertSpec[] {
  const out: AlertSpec[] = [];
  // From its RECEIVED-but-never-started tasks and its last `reserved` reply,
  // confirmed in `unacked` when the broker could say.
  for (const [hostname, { worker: w }] of death.dead) {
    const ids = new Set(death.lost.filter((l) => l.worker.hostname === hostname && l.diedAt !== null && l.task.state === "RECEIVED").map((l) => l.task.id));
    for (const id of w.reservedTaskIds) ids.add(id);
    const unacked = death.unacked;
    const held = unacked ? [...ids].filter((id) => unacked.has(id)) : [...ids];
    if (held.length === 0) continue;
    const delivered = held.map((id) => unacked?.get(id)?.deliveredAt ?? null).filter((d): d is number => d !== null);
    const timeout = visibilityTimeouts.get(hostname) ?? cfg.visibilityTimeoutS;
    const backAt = delivered.length ? Math.min(...delivered) + timeout : null;
    out.push({
      kind: "prefetched_stranded",
      subject: hostname,
      summary: `${held.length} message${held.length === 1 ? "" : "s"} prefetched by dead worker ${hostname} sit unacknowledged in the broker; Redis hands them back only after the visibility timeout (${timeout} s)${backAt ? `, from ${iso(backAt)}` : ""}, when a worker restores them.`,
      details: { task_ids: held.slice(0, 100), count: held.length, returns_at: iso(backAt), visibility_timeout_s: timeout },
    });
  }
  return out;
}
