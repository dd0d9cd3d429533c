/**
 * queue_backlog: a queue past its configured depth (QUEUE_BACKLOG_DEPTH), or
 * growing faster than it drains over the window, from the collector's
 * queue samples.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { queueDepthHistory } from "../../store/queries/detect.ts";
import type { DetectConfig } from "../config.ts";
import type { Check } from "../pass.ts";

export interface QueueSamplePoint {
  at: number;
  depth: number;
}

export function detectBacklog(history: ReadonlyMap<string, readonly QueueSamplePoint[]>, now: number, cfg: DetectConfig): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const [queue, all] of history) {
    const points = all.filter((p) => p.at >= now - cfg.queueBacklogWindowS).sort((a, b) => a.at - b.at);
    const first = points[0];
    const last = points.at(-1);
    if (!first || !last) continue;
    if (cfg.queueBacklogDepth !== null && last.depth >= cfg.queueBacklogDepth) {
      out.push({
        kind: "queue_backlog",
        subject: queue,
        summary: `Queue ${queue} holds ${last.depth} messages (limit ${cfg.queueBacklogDepth}).`,
        details: { queue, depth: last.depth, limit: cfg.queueBacklogDepth, rule: "depth" },
      });
      continue;
    }
    if (points.length < 5 || last.at - first.at < cfg.queueBacklogWindowS * 0.8) continue;
    const growth = last.depth - first.depth;
    if (growth < cfg.queueBacklogMinGrowth) continue;
    // Sustained: in the second half of the window it never fell back to where it started.
    const half = points.filter((p) => p.at >= first.at + (last.at - first.at) / 2);
    if (half.some((p) => p.depth <= first.depth)) continue;
    const perMinute = (growth / (last.at - first.at)) * 60;
    out.push({
      kind: "queue_backlog",
      subject: queue,
      summary: `Queue ${queue} grows faster than it drains: ${first.depth} → ${last.depth} messages in ${Math.round(last.at - first.at)} s (+${perMinute.toFixed(0)}/min).`,
      details: { queue, depth: last.depth, from_depth: first.depth, window_s: Math.round(last.at - first.at), growth_per_min: Math.round(perMinute), rule: "growth" },
    });
  }
  return out;
}

export const checkQueueBacklog: Check = async (pass) => {
  const history = await queueDepthHistory(pass.database, new Date((pass.now - pass.config.queueBacklogWindowS) * 1000), pass.brokerName);
  await pass.sync("queue_backlog", detectBacklog(history, pass.now, pass.config));
};
