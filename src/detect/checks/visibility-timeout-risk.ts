/**
 * visibility_timeout_risk: a message unacknowledged for close to the broker's
 * visibility timeout (RabbitMQ: its consumer_timeout). Past it, the broker
 * hands it to another worker, which runs the task again.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { taskNames } from "../../store/queries/detect.ts";
import { taskWorkers } from "../../store/queries/worker-config.ts";
import type { DetectConfig } from "../config.ts";
import type { Check, UnackedView } from "../pass.ts";
import { iso } from "./summary.ts";

/** Unacknowledged for at least VISIBILITY_RISK_RATIO of its timeout. */
function atRisk(u: UnackedView, now: number, cfg: DetectConfig, timeoutS = cfg.visibilityTimeoutS): u is UnackedView & { taskId: string; deliveredAt: number } {
  return Boolean(u.taskId) && u.deliveredAt !== null && now - u.deliveredAt >= timeoutS * cfg.visibilityRiskRatio;
}

/**
 * `timeoutOf`: the timeout that applies to a task — its worker's own
 * visibility timeout where that worker reported one (Redis), else the
 * setting's.
 */
export function detectVisibilityRisk(
  unacked: readonly UnackedView[],
  names: ReadonlyMap<string, string | null>,
  now: number,
  cfg: DetectConfig,
  timeoutOf: (taskId: string) => number = () => cfg.visibilityTimeoutS,
): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const u of unacked) {
    if (!u.taskId || !atRisk(u, now, cfg, timeoutOf(u.taskId))) continue;
    const timeout = timeoutOf(u.taskId);
    const age = now - u.deliveredAt;
    const name = names.get(u.taskId) ?? null;
    out.push({
      kind: "visibility_timeout_risk",
      subject: u.taskId,
      summary:
        cfg.redeliveryLimit === "consumer_timeout"
          ? `${name ?? "task"} ${u.taskId} has been unacknowledged for ${Math.round(age)} s of RabbitMQ's ${timeout} s consumer_timeout: past it, RabbitMQ closes the worker's channel and gives the message to another worker, which runs it again.`
          : `${name ?? "task"} ${u.taskId} has been unacknowledged for ${Math.round(age)} s of the ${timeout} s visibility timeout: past it, any worker that restores unacked messages runs it again.`,
      details: { task_id: u.taskId, name, queue: u.queue, delivered_at: iso(u.deliveredAt), unacked_s: Math.round(age), visibility_timeout_s: timeout, limit: cfg.redeliveryLimit, redelivery_at: iso(u.deliveredAt + timeout) },
    });
  }
  return out;
}

export const checkVisibilityTimeoutRisk: Check = async (pass) => {
  // Without the broker's word, nothing is known: the open alerts stay as they are.
  if (!pass.unacked) return;
  const own = pass.visibilityTimeouts ?? new Map<string, number>();
  // Candidates by the shortest timeout any worker has; then each by its own worker's.
  const shortest = Math.min(pass.config.visibilityTimeoutS, ...own.values());
  const risky = pass.unacked.filter((u) => atRisk(u, pass.now, pass.config, shortest));
  const ids = risky.map((u) => u.taskId).slice(0, 1000);
  const [names, workers] = await Promise.all([taskNames(pass.database, ids), own.size ? taskWorkers(pass.database, ids) : new Map<string, string | null>()]);
  const timeoutOf = (taskId: string) => own.get(workers.get(taskId) ?? "") ?? pass.config.visibilityTimeoutS;
  await pass.sync("visibility_timeout_risk", detectVisibilityRisk(risky, names, pass.now, pass.config, timeoutOf));
};
