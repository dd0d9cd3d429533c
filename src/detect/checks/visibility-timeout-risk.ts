/**
 * visibility_timeout_risk: a message unacknowledged for close to the broker's
 * visibility timeout (RabbitMQ: its consumer_timeout). Past it, the broker
 * hands it to another worker, which runs the task again.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { taskNames } from "../../store/queries/detect.ts";
import type { DetectConfig } from "../config.ts";
import type { Check, UnackedView } from "../pass.ts";
import { iso } from "./summary.ts";

/** Unacknowledged for at least VISIBILITY_RISK_RATIO of the timeout. */
function atRisk(u: UnackedView, now: number, cfg: DetectConfig): u is UnackedView & { taskId: string; deliveredAt: number } {
  return Boolean(u.taskId) && u.deliveredAt !== null && now - u.deliveredAt >= cfg.visibilityTimeoutS * cfg.visibilityRiskRatio;
}

export function detectVisibilityRisk(unacked: readonly UnackedView[], names: ReadonlyMap<string, string | null>, now: number, cfg: DetectConfig): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const u of unacked) {
    if (!atRisk(u, now, cfg)) continue;
    const age = now - u.deliveredAt;
    const name = names.get(u.taskId) ?? null;
    out.push({
      kind: "visibility_timeout_risk",
      subject: u.taskId,
      summary:
        cfg.redeliveryLimit === "consumer_timeout"
          ? `${name ?? "task"} ${u.taskId} has been unacknowledged for ${Math.round(age)} s of RabbitMQ's ${cfg.visibilityTimeoutS} s consumer_timeout: past it, RabbitMQ closes the worker's channel and gives the message to another worker, which runs it again.`
          : `${name ?? "task"} ${u.taskId} has been unacknowledged for ${Math.round(age)} s of the ${cfg.visibilityTimeoutS} s visibility timeout: past it, any worker that restores unacked messages runs it again.`,
      details: { task_id: u.taskId, name, queue: u.queue, delivered_at: iso(u.deliveredAt), unacked_s: Math.round(age), visibility_timeout_s: cfg.visibilityTimeoutS, limit: cfg.redeliveryLimit, redelivery_at: iso(u.deliveredAt + cfg.visibilityTimeoutS) },
    });
  }
  return out;
}

export const checkVisibilityTimeoutRisk: Check = async (pass) => {
  // Without the broker's word, nothing is known: the open alerts stay as they are.
  if (!pass.unacked) return;
  const risky = pass.unacked.filter((u) => atRisk(u, pass.now, pass.config));
  const names = await taskNames(pass.database, risky.map((u) => u.taskId).slice(0, 1000));
  await pass.sync("visibility_timeout_risk", detectVisibilityRisk(risky, names, pass.now, pass.config));
};
