/**
 * task_stalled: a task STARTED for longer than its threshold — configured
 * per task name, learned from the name's recent runtimes, or the default.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { recentRuntimes } from "../../store/queries/detect.ts";
import type { DetectConfig } from "../config.ts";
import type { Check, WorkerView, TaskView } from "../pass.ts";
import { iso, taskLabel } from "./summary.ts";
import { restartedUnder } from "./worker-death.ts";

/** Successful runs of a name needed before its 99th percentile is trusted. */
const LEARN_MIN_RUNS = 20;
/** Names whose runtimes one pass reads at the most. */
const MAX_NAMES_LEARNED = 100;

/** The STARTED-too-long threshold for a task name: configured, learned, or the default. */
export function stallThreshold(name: string | null, learnedP99: number | null, cfg: DetectConfig): { seconds: number; source: string } {
  // Own keys only: a task named `constructor` must not find Object's.
  const configured = name && Object.hasOwn(cfg.taskStallThresholds, name) ? cfg.taskStallThresholds[name] : undefined;
  if (configured !== undefined) return { seconds: configured, source: "configured" };
  if (learnedP99 !== null) return { seconds: Math.max(cfg.taskStallMinS, learnedP99 * cfg.taskStallFactor), source: "learned" };
  return { seconds: cfg.taskStallDefaultS, source: "default" };
}

/** How long it has run: since it started, or, started unseen, since Crisper heard of it (which can only be later). */
const runningSince = (t: TaskView) => t.startedAt ?? t.lastEventAt;

export function detectStalled(
  unfinished: readonly TaskView[],
  learnedP99: ReadonlyMap<string, number>,
  deadWorkers: ReadonlySet<string>,
  now: number,
  cfg: DetectConfig,
  workers: readonly WorkerView[] = [],
): AlertSpec[] {
  const out: AlertSpec[] = [];
  const byHost = new Map(workers.map((w) => [w.hostname, w]));
  for (const t of unfinished) {
    if (t.state !== "STARTED") continue;
    // A task on a dead worker is lost, not stalled.
    if (t.worker && deadWorkers.has(t.worker)) continue;
    // So is one whose worker restarted under it (task_lost, worker-death.ts):
    // the process that ran it is gone, and a second alert would only repeat that.
    const w = t.worker ? byHost.get(t.worker) : undefined;
    if (w && restartedUnder(w, t)) continue;
    // Started unseen: task events were off; the result backend said STARTED.
    const since = runningSince(t);
    const th = stallThreshold(t.name, t.name ? (learnedP99.get(t.name) ?? null) : null, cfg);
    const running = now - since;
    if (running < th.seconds) continue;
    out.push({
      kind: "task_stalled",
      subject: t.id,
      summary: `${taskLabel(t)} has been STARTED on ${t.worker ?? "an unknown worker"} for ${Math.round(running)} s (threshold ${Math.round(th.seconds)} s, ${th.source}).`,
      details: { task_id: t.id, name: t.name, worker: t.worker, started_at: iso(since), running_s: Math.round(running), threshold_s: th.seconds, threshold_source: th.source },
    });
  }
  return out;
}

export const checkTaskStalled: Check = async (pass) => {
  const { now, config } = pass;
  // Runtimes are read only for names with a task running past the shortest threshold.
  const longNames = new Set<string>();
  for (const t of pass.unfinished) {
    if (t.state === "STARTED" && now - runningSince(t) >= config.taskStallMinS && t.name) longNames.add(t.name);
  }
  const p99 = new Map<string, number>();
  for (const name of [...longNames].slice(0, MAX_NAMES_LEARNED)) {
    const r = (await recentRuntimes(pass.database, name)).sort((a, b) => a - b);
    const at = r[Math.min(r.length - 1, Math.floor(r.length * 0.99))];
    if (r.length >= LEARN_MIN_RUNS && at !== undefined) p99.set(name, at);
  }
  await pass.sync("task_stalled", detectStalled(pass.unfinished, p99, pass.deadWorkers, pass.asOf, config, pass.workers));
};
