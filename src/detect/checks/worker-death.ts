/**
 * The worker-death analysis, one pass over the workers and their tasks that
 * yields three alert kinds: worker_offline (worker-offline.ts), task_lost
 * (task-lost.ts) and prefetched_stranded (prefetched-stranded.ts).
 *
 * A worker is dead when its heartbeats stopped without a worker-offline
 * event (Celery's heartbeat rule, state/worker.ts, plus a grace). Its
 * RECEIVED and STARTED tasks will not finish there; neither will those of a
 * worker that restarted under them.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { AT_WORKER_STATES } from "../../celery/states.ts";
import { workerLiveness } from "../../state/worker.ts";
import type { DetectConfig } from "../config.ts";
import type { Check, TaskView, UnackedView, WorkerView } from "../pass.ts";
import { prefetchedStrandedAlerts } from "./prefetched-stranded.ts";
import { taskLostAlerts } from "./task-lost.ts";
import { workerOfflineAlerts } from "./worker-offline.ts";

const AT_WORKER: ReadonlySet<string> = new Set(AT_WORKER_STATES);

/** When a worker is dead by Celery's heartbeat rule plus grace; null if alive or shut down cleanly. */
export function deathTime(w: WorkerView, now: number, cfg: DetectConfig): number | null {
  const live = workerLiveness(
    { lastHeartbeatAt: w.lastHeartbeatAt, freq: w.freq, offlineAt: w.offlineAt },
    now,
  );
  if (live.status !== "offline" || live.reason !== "heartbeat_lost" || live.expiresAt === null) return null;
  if (now < live.expiresAt + cfg.workerOfflineGraceS) return null;
  if (now - live.expiresAt > cfg.workerForgetAfterS) return null;
  return live.expiresAt;
}

export interface DeadWorker {
  worker: WorkerView;
  /** When its heartbeats expired. */
  diedAt: number;
}

export interface LostTask {
  task: TaskView;
  worker: WorkerView;
  /** When its worker died; null when the worker restarted under it instead. */
  diedAt: number | null;
}

export interface WorkerDeath {
  /** By hostname, in the order of the workers given. */
  dead: ReadonlyMap<string, DeadWorker>;
  lost: readonly LostTask[];
  /** Unacknowledged messages by task id; null when the broker could not say. */
  unacked: ReadonlyMap<string, UnackedView> | null;
}

/** What the analysis looks at. */
export interface DeathWatch {
  workers: readonly WorkerView[];
  unfinished: readonly TaskView[];
  unacked: readonly UnackedView[] | null;
  now: number;
  /**
   * When the event stream last (re)connected: heartbeats missed while
   * Crisper itself was cut off say nothing about the workers, so nothing is
   * declared dead until the stream has been up for a full heartbeat window.
   */
  streamUpSince: number | null;
}

export function analyseWorkerDeath({ workers, unfinished, unacked, now, streamUpSince }: DeathWatch, cfg: DetectConfig): WorkerDeath {
  const dead = new Map<string, DeadWorker>();
  const lost: LostTask[] = [];
  const unackedById = new Map<string, UnackedView>();
  for (const u of unacked ?? []) if (u.taskId) unackedById.set(u.taskId, u);
  const out = { dead, lost, unacked: unacked ? unackedById : null };
  if (streamUpSince === null) return out;
  const byHost = new Map(workers.map((w) => [w.hostname, w]));
  for (const w of workers) {
    const died = deathTime(w, now, cfg);
    // The stream must have been up long enough to have seen its heartbeats.
    const window = (w.freq ?? 2) * 2 + cfg.workerOfflineGraceS;
    if (died !== null && now - streamUpSince >= window) dead.set(w.hostname, { worker: w, diedAt: died });
  }
  for (const t of unfinished) {
    if (!AT_WORKER.has(t.state) || !t.worker) continue;
    const w = byHost.get(t.worker);
    if (!w) continue;
    const died = dead.get(t.worker)?.diedAt ?? null;
    // A worker that came back online after the task's last event is a new
    // process: the old one, which held this task, is gone — unless it shut
    // down cleanly in between (a warm shutdown finishes what it runs and
    // hands prefetched messages back to the queue).
    const cleanExit = w.offlineAt !== null && w.offlineAt >= t.lastEventAt;
    const restarted = w.onlineAt !== null && w.onlineAt > t.lastEventAt && !cleanExit;
    if (died === null && !restarted) continue;
    lost.push({ task: t, worker: w, diedAt: died });
  }
  return out;
}

/** worker_offline, task_lost and prefetched_stranded, as they hold now. */
export function detectWorkerDeath(
  workers: readonly WorkerView[],
  unfinished: readonly TaskView[],
  unacked: readonly UnackedView[] | null,
  now: number,
  streamUpSince: number | null,
  cfg: DetectConfig,
): { workerOffline: AlertSpec[]; taskLost: AlertSpec[]; prefetchedStranded: AlertSpec[] } {
  const death = analyseWorkerDeath({ workers, unfinished, unacked, now, streamUpSince }, cfg);
  return { workerOffline: workerOfflineAlerts(death), taskLost: taskLostAlerts(death), prefetchedStranded: prefetchedStrandedAlerts(death, cfg) };
}

export const checkWorkerDeath: Check = async (pass) => {
  const found = detectWorkerDeath(pass.workers, pass.unfinished, pass.unacked, pass.asOf, pass.streamUpSince, pass.config);
  await pass.sync("worker_offline", found.workerOffline);
  await pass.sync("task_lost", found.taskLost);
  // RabbitMQ requeues a dead worker's prefetched messages at once: nothing is stranded.
  await pass.sync("prefetched_stranded", pass.broker?.capabilities.strandsPrefetched === false ? [] : found.prefetchedStranded);
};
